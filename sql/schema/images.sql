-- One row per decodable, unique image of a batch.
CREATE TABLE images (
    batch          VARCHAR NOT NULL,
    image_id       VARCHAR NOT NULL,  -- sha256 of the file's bytes
    source_path    VARCHAR NOT NULL,
    format         VARCHAR,
    mode           VARCHAR,
    width          INTEGER NOT NULL,
    height         INTEGER NOT NULL,
    bytes          BIGINT NOT NULL,
    text           VARCHAR,           -- caption, when the manifest has one
    tags           VARCHAR NOT NULL,
    manifest_line  INTEGER,
    ingested_at    TIMESTAMP WITH TIME ZONE NOT NULL
);
