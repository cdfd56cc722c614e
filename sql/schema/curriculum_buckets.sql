-- Difficulty of each labeled training clip and its curriculum bucket (easy / medium / hard).
CREATE TABLE curriculum_buckets (
    batch          VARCHAR NOT NULL,
    clip_id        VARCHAR NOT NULL,
    duration_s     DOUBLE NOT NULL,
    snr_db         DOUBLE,            -- the clip's snr_db tag; NULL when absent or 'clean'
    words_per_s    DOUBLE NOT NULL,   -- reference words per second of audio
    baseline_wer   DOUBLE,            -- WER of the greedy hypothesis (NULL: not labeled yet)
    difficulty     DOUBLE NOT NULL,   -- weighted mean of the four percentile ranks, in [0, 1]
    bucket         VARCHAR NOT NULL,  -- 'easy' | 'medium' | 'hard'
    clip_set       VARCHAR,           -- fingerprint of the clip set it was made from (clip_sets.sql)
    created_at     TIMESTAMP WITH TIME ZONE NOT NULL
);
