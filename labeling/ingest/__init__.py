"""Ingestion: from a batch's source listing to warehouse rows and quarantine items.

* :mod:`labeling.ingest.manifest`: a batch's source entries, from JSONL manifests or folders;
* :mod:`labeling.ingest.media`: media kinds, file checks, content hashes, ``MediaError``;
* :mod:`labeling.ingest.audio`: audio decoding (soundfile, PyAV) to mono at one rate;
* :mod:`labeling.ingest.image`: image probing (Pillow);
* :mod:`labeling.ingest.video`: video probing (PyAV), every frame decoded;
* :mod:`labeling.ingest.rows`: one function per media kind, entries to rows and quarantine;
* :mod:`labeling.ingest.fuzz`: hostile mutations of good media files, for tests.
"""
