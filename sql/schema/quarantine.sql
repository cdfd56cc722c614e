-- Everything an asset refused, with the reason, so nothing is silently lost.
CREATE TABLE quarantine (
    asset          VARCHAR NOT NULL,  -- the asset that refused the item
    batch          VARCHAR NOT NULL,  -- partition key
    source_path    VARCHAR,           -- the file (or manifest) concerned
    line           INTEGER,           -- manifest line number, when from a manifest
    reason         VARCHAR NOT NULL,  -- short code: missing, empty_file, undecodable, duplicate, ...
    detail         VARCHAR,           -- what went wrong and what to do
    quarantined_at TIMESTAMP WITH TIME ZONE NOT NULL
);
