-- Human review of a batch's sound regions, pulled from Label Studio (audio_qa_qc_verdicts):
-- one row per clip pushed. sound_regions reads the accepted rows as the clip's `human`
-- source, which its questions then use before the manifest's or the detector's regions.
CREATE TABLE sound_region_reviews (
    batch                VARCHAR NOT NULL,
    clip_id              VARCHAR NOT NULL,
    status               VARCHAR NOT NULL,  -- 'accepted' | 'disputed' | 'unreviewed'
    regions              VARCHAR,           -- JSON [{label, start, end}] (seconds) of the accepted
                                            -- annotation, without non-sounds (silence); NULL unless accepted
    accepted_annotator   VARCHAR,           -- whose annotation was accepted
    n_annotations        INTEGER NOT NULL,  -- usable annotations (refused ones are in quarantine)
    annotators           VARCHAR[],         -- Label Studio user ids (or emails), in submission order
    annotations          VARCHAR NOT NULL,  -- JSON {annotator: [{label, start, end}]}: every usable annotation
    class_iou            VARCHAR,           -- JSON {class: IoU over time} of the first two annotators; NULL with fewer
    mean_iou             DOUBLE,            -- their mean over the classes either marked
    preannotation_source VARCHAR,           -- the regions pre-drawn: 'manifest' | 'model:<name>' | NULL (none)
    second_review        BOOLEAN NOT NULL,  -- the task was routed to a second annotator
    task_id              BIGINT,            -- Label Studio task id
    project_id           BIGINT,            -- Label Studio project id
    pulled_at            TIMESTAMP WITH TIME ZONE NOT NULL
);
