-- Each video of a batch as standard frames, cut in two (labeling/video_qa/segments.py): the
-- frames before the cut are the model's input (context), those at or after it the truth.
CREATE TABLE video_segments (
    batch                 VARCHAR NOT NULL,
    video_id              VARCHAR NOT NULL,
    source_path           VARCHAR NOT NULL,
    source_fps            DOUBLE NOT NULL,     -- the container's average frame rate
    source_frames         INTEGER NOT NULL,    -- frames decoded
    duration_s            DOUBLE NOT NULL,     -- first frame's start to last frame's end
    fps                   DOUBLE,              -- frames per second kept; NULL: every source frame
    short_side            INTEGER,             -- pixels of the frames' shorter side; NULL: source size
    cut                   DOUBLE NOT NULL,     -- the cut as a share of the duration (0.7)
    cut_s                 DOUBLE NOT NULL,     -- cut × duration, seconds from the first frame
    source_cut_frame      INTEGER NOT NULL,    -- the first source frame starting at or after the cut
    width                 INTEGER NOT NULL,    -- of the frames written
    height                INTEGER NOT NULL,
    context_frames        INTEGER NOT NULL,
    truth_frames          INTEGER NOT NULL,
    context_paths         VARCHAR[] NOT NULL,  -- frame files before the cut, in order
    truth_paths           VARCHAR[] NOT NULL,  -- frame files at or after the cut, in order
    context_times         DOUBLE[] NOT NULL,   -- each frame's time (s from the first frame)
    truth_times           DOUBLE[] NOT NULL,
    context_source_frames INTEGER[] NOT NULL,  -- the source frame each one shows
    truth_source_frames   INTEGER[] NOT NULL,
    frame_dir             VARCHAR NOT NULL,
    clip_set              VARCHAR,             -- fingerprint of the video set it was made from
    created_at            TIMESTAMP WITH TIME ZONE NOT NULL
);
