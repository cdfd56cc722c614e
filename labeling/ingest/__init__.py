"""Ingestion: from a batch's source listing to warehouse rows and quarantine items.

* :mod:`labeling.ingest.manifest`: a batch's source entries and issues, from any source format;
* :mod:`labeling.ingest.formats`: one reader per format (NeMo JSONL, media folders, HF
  audiofolder and saved datasets, Lhotse, Kaldi, LibriSpeech), detected from the path;
* :mod:`labeling.ingest.spans`: segments of a recording as clips (`file.wav#t=START,END`);
* :mod:`labeling.ingest.segment`: long recordings cut into speech segments (VAD), and into
  pieces for long-form transcription;
* :mod:`labeling.ingest.export`: clips out as NeMo JSONL, Lhotse cuts or an HF dataset;
* :mod:`labeling.ingest.media`: media kinds, file checks, content hashes, ``MediaError``;
* :mod:`labeling.ingest.audio`: audio decoding (soundfile, PyAV) to mono at one rate;
* :mod:`labeling.ingest.image`: image probing (Pillow);
* :mod:`labeling.ingest.video`: video probing (PyAV), every frame decoded;
* :mod:`labeling.ingest.rows`: one function per media kind, entries to rows and quarantine;
* :mod:`labeling.ingest.fuzz`: hostile mutations of good media files, for tests.
"""
