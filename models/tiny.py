"""Tiny random models for every role, built offline from configs, for tests and demos.

Each `build_tiny_*` writes a folder that the role's loader (and so
`ModelHub.load(role, folder)`) reads like the real hub model: weights,
config, and a processor or tokenizer built in-process (a WordPiece vocabulary
written here, or a byte-level BPE trained here with `tokenizers`). They prove
code paths, not quality. Each builds in well under a second.

Example:
    >>> import tempfile
    >>> path = build_tiny_qwen2(tempfile.mkdtemp())
    >>> sorted(p.name for p in path.iterdir() if p.suffix == ".json")[:2]
    ['config.json', 'generation_config.json']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import (
    BertTokenizer,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

WORDS = (
    "a photo of the an image picture red green blue black white square circle cat dog person car "
    "on in with and is what describe happens hear sound speech music hello world yes no"
).split()
"""The vocabulary of the tiny tokenizers (enough for test prompts)."""

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% elif part['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""A ChatML template, as Qwen models use, with image and audio placeholders."""

_CHAT_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def wordpiece_tokenizer(extra_specials: Sequence[str] = (), **kwargs) -> BertTokenizer:
    """A lower-casing BERT tokenizer over `WORDS` (built from a vocabulary, not a file).

    In transformers 5 `BertTokenizer(vocab_file=...)` is silently ignored (every
    token becomes [UNK]); `vocab=` is read.
    """
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *extra_specials, ".", ",", "?", *WORDS]
    return BertTokenizer(vocab={t: i for i, t in enumerate(tokens)}, **kwargs)


def bpe_tokenizer(extra_specials: Sequence[str] = (), vocab_size: int = 320):
    """A byte-level BPE with ChatML special tokens, trained here on a few sentences."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[*_CHAT_SPECIALS, *extra_specials],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator([" ".join(WORDS), "What is in the image? Describe it."] * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
    )


def tiny_qwen2_config(tokenizer, **overrides) -> Qwen2Config:
    """A 2-layer, 16-wide Qwen2 language model config for `tokenizer`."""
    cfg = dict(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None, tie_word_embeddings=True,
        initializer_range=0.2,  # wide enough that greedy text varies (0.02 emits only newlines)
    )
    cfg.update(overrides)
    return Qwen2Config(**cfg)


def build_tiny_qwen2(dest: str | Path, seed: int = 0) -> Path:
    """A tiny Qwen2 causal LM with a chat template (the `text_llm` role)."""
    from transformers import Qwen2ForCausalLM

    dest, tokenizer = Path(dest), bpe_tokenizer()
    torch.manual_seed(seed)
    Qwen2ForCausalLM(tiny_qwen2_config(tokenizer)).save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest


def build_tiny_llava(dest: str | Path, seed: int = 0) -> Path:
    """A tiny LLaVA: CLIP vision tower (16 px, 8 px patches) + tiny Qwen2 (the `vlm` role)."""
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    from transformers.models.llava.processing_llava import LlavaProcessor

    dest, tokenizer = Path(dest), bpe_tokenizer(["<image>"])
    vision = CLIPVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        image_size=16, patch_size=8, projection_dim=16,
    )
    config = LlavaConfig(
        vision_config=vision, text_config=tiny_qwen2_config(tokenizer),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default", vision_feature_layer=-1,
    )
    torch.manual_seed(seed)
    LlavaForConditionalGeneration(config).save_pretrained(dest)
    LlavaProcessor(
        image_processor=CLIPImageProcessorPil(
            size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}
        ),
        tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE,
    ).save_pretrained(dest)
    return dest


def build_tiny_qwen2_audio(dest: str | Path, seed: int = 0) -> Path:
    """A tiny Qwen2-Audio: 1-layer Whisper-style encoder + tiny Qwen2 (the `audio_lm` role)."""
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioEncoderConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    dest = Path(dest)
    tokenizer = bpe_tokenizer(["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"])
    audio = Qwen2AudioEncoderConfig(
        d_model=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32,
        num_mel_bins=128, max_source_positions=1500,
    )
    config = Qwen2AudioConfig(
        audio_config=audio, text_config=tiny_qwen2_config(tokenizer),
        audio_token_id=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    Qwen2AudioForConditionalGeneration(config).save_pretrained(dest)
    Qwen2AudioProcessor(  # chat template: Qwen2-Audio's own default
        feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tokenizer
    ).save_pretrained(dest)
    return dest


def build_tiny_blip(dest: str | Path, seed: int = 0) -> Path:
    """A tiny BLIP captioner (16 px images, 1-layer towers) (the `captioner` role)."""
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipProcessor
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    dest = Path(dest)
    tokenizer = wordpiece_tokenizer(["[DEC]"], bos_token="[DEC]")
    text = dict(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=64, encoder_hidden_size=16,
        bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id,
        sep_token_id=tokenizer.sep_token_id, eos_token_id=tokenizer.sep_token_id,
    )
    vision = dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        image_size=16, patch_size=8,
    )
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(
        BlipConfig(text_config=text, vision_config=vision, projection_dim=16)
    )
    model.save_pretrained(dest)
    image_processor = BlipImageProcessorPil(size={"height": 16, "width": 16})
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(dest)
    return dest


def build_tiny_grounding_dino(dest: str | Path, seed: int = 0) -> Path:
    """A tiny Grounding DINO (Swin 8-wide, BERT 8-wide, 2 decoder layers, 10 queries)."""
    from transformers import (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoProcessor,
        SwinConfig,
    )
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import (
        GroundingDinoImageProcessorPil,
    )

    dest, tokenizer = Path(dest), wordpiece_tokenizer()
    backbone = SwinConfig(
        window_size=7, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], image_size=64,
        out_features=["stage2", "stage3", "stage4"], out_indices=[2, 3, 4],
    )
    text = dict(
        model_type="bert", vocab_size=len(tokenizer), hidden_size=8, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=16, max_position_embeddings=64,
    )
    config = GroundingDinoConfig(
        d_model=32,  # the model's GroupNorm has 32 groups
        encoder_layers=1, decoder_layers=2,  # fewer than 2 decoder layers fails
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=16,
        decoder_ffn_dim=16, num_queries=10, num_feature_levels=4, encoder_n_points=2,
        decoder_n_points=2, max_text_len=32, backbone_config=backbone, text_config=text,
    )
    torch.manual_seed(seed)
    GroundingDinoForObjectDetection(config).save_pretrained(dest)
    image_processor = GroundingDinoImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 96})
    processor = GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)
    processor.save_pretrained(dest)
    return dest


def build_tiny_sam(dest: str | Path, seed: int = 0) -> Path:
    """A tiny SAM (32 px input, 16 x 16 embedding, 2-layer ViT) for box prompts."""
    from transformers import (
        SamConfig,
        SamMaskDecoderConfig,
        SamModel,
        SamProcessor,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    dest = Path(dest)
    vision = SamVisionConfig(
        hidden_size=32, intermediate_size=64, projection_dim=32, output_channels=16,
        num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=2, window_size=4,
        global_attn_indexes=[1], num_pos_feats=8, mlp_dim=64,
    )
    prompt = SamPromptEncoderConfig(
        hidden_size=16, image_size=32, patch_size=2, mask_input_channels=4, num_point_embeddings=4
    )
    decoder = SamMaskDecoderConfig(
        hidden_size=16, mlp_dim=32, num_hidden_layers=2, num_attention_heads=2,
        attention_downsample_rate=2, num_multimask_outputs=3, iou_head_depth=2,
        iou_head_hidden_dim=16,
    )
    torch.manual_seed(seed)
    SamModel(
        SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    ).save_pretrained(dest)
    SamProcessor(SamImageProcessorPil(
        size={"longest_edge": 32}, pad_size={"height": 32, "width": 32},
        mask_size={"longest_edge": 16}, mask_pad_size={"height": 16, "width": 16},
    )).save_pretrained(dest)
    return dest


BUILDERS = {
    "captioner": build_tiny_blip,
    "detector": build_tiny_grounding_dino,
    "segmenter": build_tiny_sam,
    "vlm": build_tiny_llava,
    "text_llm": build_tiny_qwen2,
    "audio_lm": build_tiny_qwen2_audio,
}
"""Role -> builder of its tiny model (ASR: `models.testing.build_tiny_whisper`)."""
