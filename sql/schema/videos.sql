-- One row per decodable, unique video of a batch.
CREATE TABLE videos (
    batch          VARCHAR NOT NULL,
    video_id       VARCHAR NOT NULL,  -- sha256 of the file's bytes
    source_path    VARCHAR NOT NULL,
    codec          VARCHAR,
    width          INTEGER NOT NULL,
    height         INTEGER NOT NULL,
    fps            DOUBLE NOT NULL,
    frame_count    INTEGER NOT NULL,
    duration_s     DOUBLE NOT NULL,
    has_audio      BOOLEAN NOT NULL,
    bytes          BIGINT NOT NULL,
    text           VARCHAR,
    tags           VARCHAR NOT NULL,
    manifest_line  INTEGER,
    ingested_at    TIMESTAMP WITH TIME ZONE NOT NULL
);
