"""Synthetic chain datasets and a tiny learnable LLaVA, for tests and the learning check.

* :func:`quadrant_pointing` writes a pointing dataset through the image chain's own code
  (:func:`labeling.image.pointing.group_examples`, ``trl_row``, ``export_pointing``): pictures of
  one red square at one of four positions (its size and a faint noise vary), the prompt
  "Point at red square.", the square's mask, its centre as the verified point. Pointing at
  the right quadrant's centre always hits; without the image the best guess hits 1 in 4.
* :func:`video_choice_rows` writes video multiple-choice rows through the video chain's
  ``dataset_row``/``export_dataset`` (frames are small PNGs; the right letter is random).
* :func:`build_learning_llava` builds a LLaVA small enough for CPU (CLIP 16 px with 8 px
  patches, so the four quadrants are the four image tokens; a 2-layer 64-wide Qwen2) whose
  byte-level BPE was trained on the task's own text, so it can write the answers.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> path = quadrant_pointing(root / "train", n=4, seed=0)
    >>> import json; row = json.loads(path.read_text().splitlines()[0])
    >>> row["prompt"], row["image_size"], len(row["masks"])
    ([{'role': 'user', 'content': 'Point at red square.'}], [32, 32], 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

SIZE = 32
QUADRANTS = ((8, 8), (24, 8), (8, 24), (24, 24))  # centres (x, y) in pixels
PHRASE = "red square"
BACKGROUND = (122, 116, 104)  # CLIP's mean colour: a background patch shows nothing but where it is
POSITION_STD = 1.0


def quadrant_pointing(folder: str | Path, *, n: int, seed: int = 0) -> Path:
    """Write ``n`` quadrant pictures and their pointing dataset into ``folder``; returns the
    ``pointing.jsonl`` path (positions cycle through the quadrants in a seeded order)."""
    from PIL import Image

    from labeling.image.masks import encode_rle
    from labeling.image.pointing import (
        VerifiedRegion,
        export_pointing,
        group_examples,
        pointing_coco,
        trl_row,
    )

    folder = Path(folder).resolve()
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    quadrants = np.concatenate([rng.permutation(4) for _ in range((n + 3) // 4)])[:n]
    regions, images = [], {}
    for i, q in enumerate(quadrants):
        cx, cy = QUADRANTS[int(q)]
        half = int(rng.integers(5, 8))  # a 10-14 px square around the quadrant's centre
        noise = rng.integers(-8, 9, (SIZE, SIZE, 1))
        pixels = np.clip(np.array(BACKGROUND) + noise, 0, 255).astype(np.uint8)
        pixels[cy - half:cy + half, cx - half:cx + half] = (220, 30, 30)
        mask = np.zeros((SIZE, SIZE), bool)
        mask[cy - half:cy + half, cx - half:cx + half] = True
        name = f"q{seed}-{i:04d}"
        path = folder / "images" / f"{name}.png"
        Image.fromarray(pixels).save(path)
        regions.append(VerifiedRegion(name, PHRASE, 0, encode_rle(mask), 1.0,
                                      ((float(cx), float(cy)),)))
        images[name] = {"source_path": str(path), "width": SIZE, "height": SIZE}
    examples, _ = group_examples(regions)
    rows = [trl_row(e, image=images[e["image_id"]]["source_path"],
                    image_file=images[e["image_id"]]["source_path"], width=SIZE, height=SIZE,
                    provenance={"caption_source": "manifest", "weights": "synthetic"})
            for e in examples]
    return export_pointing(rows, pointing_coco(examples, images), folder)["jsonl"]


def video_choice_rows(folder: str | Path, *, n: int, frames: int = 3, seed: int = 0,
                      kinds: Sequence[str] = ("rest_of_video", "next_event")) -> Path:
    """Write ``n`` video multiple-choice rows (and their frames) as the video chain exports
    them into ``folder``; returns the ``video_qa.jsonl`` path. Every other row is open-form."""
    from PIL import Image

    from labeling.questions.choices import MultipleChoice
    from labeling.video_qa.chain import FRAMES_NOTE
    from labeling.video_qa.dataset import dataset_row, export_dataset

    folder = Path(folder).resolve()
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        paths = []
        for f in range(frames):
            path = folder / "frames" / f"v{i}-{f}.png"
            Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(path)
            paths.append(str(path))
        letter = "ABCD"[int(rng.integers(4))]
        options = ["It rolls.", "It jumps.", "It stops.", "It spins."]
        mc = MultipleChoice("What happens next?", tuple(options), letter)
        choice = i % 2 == 0
        question = {
            "question_id": f"q{i}", "group_id": f"g{i}", "video_id": f"v{i}",
            "kind": kinds[i // 2 % len(kinds)], "form": "choice" if choice else "open",
            "question": mc.question,
            "prompt": f"{FRAMES_NOTE}\n{mc.prompt if choice else mc.question}",
            "answer": letter if choice else mc.answer_text, "answer_text": mc.answer_text,
            "answer_type": "choice" if choice else "text", "options": options if choice else [],
            "question_source": "template", "context_source": "manifest",
            "truth_source": "manifest", "truth_description": mc.answer_text, "support": 1.0,
            "answerable_blind": False, "blind_margin": -0.3,
            "curriculum_bucket": "choice/subtle", "curriculum_order": 1, "bucket": "medium",
            "qc": "unreviewed"}
        rows.append(dataset_row(question, video=f"/videos/v{i}.mp4", frames=paths,
                                weights="synthetic"))
    return export_dataset(rows, folder)["jsonl"]


def learning_tokenizer(extra_texts: Sequence[str] = ()):
    """A byte-level BPE (ChatML specials, ``<image>``) trained on the quadrant task's text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from models.tiny import CHAT_TEMPLATE

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    answers = [f"({x}, {y})" for x in (25, 75) for y in (25, 75)]
    corpus = [f"Point at {PHRASE}.", "user", "assistant", *answers, *extra_texts]
    tok.train_from_iterator(corpus * 8, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", chat_template=CHAT_TEMPLATE)


def build_learning_llava(dest: str | Path, seed: int = 0, *, text_width: int = 64,
                         vision_width: int = 32, position_std: float = POSITION_STD) -> Path:
    """A LLaVA a CPU trains in minutes: CLIP (16 px, 8 px patches, 32 wide, 1 layer) and a
    2-layer, 64-wide Qwen2 over :func:`learning_tokenizer`; processor and template saved."""
    from transformers import (
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        Qwen2Config,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    from transformers.models.llava.processing_llava import LlavaProcessor

    from models.tiny import CHAT_TEMPLATE

    dest, tokenizer = Path(dest), learning_tokenizer()
    vision = CLIPVisionConfig(hidden_size=vision_width, intermediate_size=2 * vision_width,
                              num_hidden_layers=1,
                              num_attention_heads=2, image_size=16, patch_size=8,
                              projection_dim=vision_width)
    text = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=text_width, intermediate_size=2 * text_width,
        num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None, tie_word_embeddings=True)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                         vision_feature_select_strategy="default", vision_feature_layer=-1)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    with torch.no_grad():  # CLIP's init makes where a patch is ~1/200 of what it shows
        model.model.vision_tower.embeddings.position_embedding.weight.normal_(
            std=position_std)
    model.save_pretrained(dest)
    LlavaProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 16},
                                              crop_size={"height": 16, "width": 16}),
        tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE,
    ).save_pretrained(dest)
    return dest
