-- One row per ingestion batch (a dynamic partition): where its media comes from.
CREATE TABLE batches (
    batch         VARCHAR NOT NULL,  -- partition key
    source        VARCHAR NOT NULL,  -- absolute path of a manifest (.jsonl) or a folder, or a dataset URI (hf://datasets/ID)
    source_kind   VARCHAR NOT NULL,  -- 'manifest' | 'folder' | 'dataset'
    allowed_roots VARCHAR[],          -- media paths must resolve inside one of these
    role          VARCHAR,           -- 'train' | 'eval' (NULL in batches registered before roles: train)
    format        VARCHAR,           -- the source's format (labeling.ingest.formats); NULL: detected
    text_key      VARCHAR,           -- the transcript's key or column; NULL: text (or the one common alternative)
    segment       VARCHAR,           -- 'vad': audio over the clip limit is cut into speech segments; NULL: quarantined too_long
    registered_at TIMESTAMP WITH TIME ZONE NOT NULL
);
