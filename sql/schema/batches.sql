-- One row per ingestion batch (a dynamic partition): where its media comes from.
CREATE TABLE batches (
    batch         VARCHAR NOT NULL,  -- partition key
    source        VARCHAR NOT NULL,  -- absolute path of a manifest (.jsonl) or a folder
    source_kind   VARCHAR NOT NULL,  -- 'manifest' | 'folder'
    allowed_roots VARCHAR[],          -- media paths must resolve inside one of these
    role          VARCHAR,           -- 'train' | 'eval' (NULL in batches registered before roles: train)
    registered_at TIMESTAMP WITH TIME ZONE NOT NULL
);
