-- One row per decodable, unique audio clip of a batch. Media stays where it is.
CREATE TABLE audio_clips (
    batch          VARCHAR NOT NULL,  -- partition key
    clip_id        VARCHAR NOT NULL,  -- sha256 of the file's bytes
    source_path    VARCHAR NOT NULL,  -- absolute path (or URL) of the file
    format         VARCHAR,           -- container/codec as decoded
    sample_rate    INTEGER NOT NULL,  -- of the source file
    channels       INTEGER NOT NULL,  -- of the source file
    duration_s     DOUBLE NOT NULL,
    rms_dbfs       DOUBLE NOT NULL,   -- of the 16 kHz mono signal
    peak_dbfs      DOUBLE NOT NULL,
    text           VARCHAR,           -- reference transcript; NULL when unlabeled
    tags           VARCHAR NOT NULL,  -- JSON object of every other manifest key (accent, snr_db, split, ...)
    manifest_line  INTEGER,
    ingested_at    TIMESTAMP WITH TIME ZONE NOT NULL
);
