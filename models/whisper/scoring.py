"""Teacher-forced scores of transcripts under Whisper: the one score of every hypothesis.

A hypothesis' ``avg_logprob`` is the teacher-forced score of its *text* (re-tokenized with the
leading space Whisper emits, plus end-of-text) under the raw model: temperature 1, no token
suppression. Beams, samples and human references are thus scored by one function. Scoring runs
the prompt once per clip and shares its cached cross-attention keys and values among that clip's
texts (half the cost of a plain forward pass per text).

:class:`TeacherForcedScoring` is a mixin of :class:`models.whisper.asr.WhisperASR`; it uses the
adapter's ``model``, ``processor``, ``device``, ``prompt_ids``, ``eos_id`` and ``window``.
"""

from __future__ import annotations

import torch

_SCORE_ROWS_PER_CHUNK = 32  # texts run through the decoder at once when scoring
_SCORE_POSITIONS_PER_CHUNK = 1024  # logit rows (x vocabulary) materialised at once


class TeacherForcedScoring:
    """Scores of texts against encoded clips, for an adapter around a Whisper model."""

    def _score(
        self, encoded: torch.Tensor, clips: list[int], texts: list[str]
    ) -> list[tuple[float, int]]:
        """Teacher-forced (avg_logprob, num_tokens) of `texts[i]` against clip `clips[i]`.

        Texts are taken clip by clip, so a clip's prompt pass is shared by its texts.
        """
        order = sorted(range(len(texts)), key=lambda i: clips[i])
        results: list[tuple[float, int]] = [(0.0, 0)] * len(texts)
        for start in range(0, len(order), _SCORE_ROWS_PER_CHUNK):
            rows = order[start : start + _SCORE_ROWS_PER_CHUNK]
            scores = self._score_chunk(encoded, [clips[i] for i in rows], [texts[i] for i in rows])
            for row, score in zip(rows, scores, strict=True):
                results[row] = score
        return results

    @torch.inference_mode()
    def _score_chunk(
        self, encoded: torch.Tensor, clips: list[int], texts: list[str]
    ) -> list[tuple[float, int]]:
        """Scores of a few texts, in two decoder passes for all of them."""
        targets = [self._target_ids(text) for text in texts]
        states = self._teacher_forced_states(encoded, clips, targets)
        labels, mask = _label_grid(targets, self.eos_id)
        logprobs = self._token_logprobs(states[mask.to(self.device)], labels[mask].to(self.device))
        counts = [len(t) for t in targets]
        sums = [float(part.sum()) for part in logprobs.split(counts)]
        return [(total / count, count) for total, count in zip(sums, counts, strict=True)]

    def _target_ids(self, text: str) -> list[int]:
        """Text tokens as Whisper emits them (leading space) cut to the window, then end-of-text."""
        text = text.strip()
        ids = (
            self.processor.tokenizer(" " + text, add_special_tokens=False).input_ids if text else []
        )
        return ids[: self.window] + [self.eos_id]

    def _teacher_forced_states(
        self, encoded: torch.Tensor, clips: list[int], targets: list[list[int]]
    ) -> torch.Tensor:
        """Decoder states [texts, longest target, width]; state j predicts target token j.

        The prompt runs once per clip; its cache (self-attention, and the
        cross-attention keys and values, the costly part) is then shared by
        all of that clip's texts. Right padding is safe under causal masking.
        """
        decoder = self.model.get_decoder()
        unique, local = torch.tensor(clips, device=self.device).unique(return_inverse=True)
        prompt = torch.tensor([self.prompt_ids], device=self.device).expand(len(unique), -1)
        first = decoder(input_ids=prompt, encoder_hidden_states=encoded[unique], use_cache=True)
        states = first.last_hidden_state[local, -1:]
        width = max(len(t) for t in targets)
        if width == 1:
            return states
        cache = first.past_key_values
        cache.batch_select_indices(local)
        inputs = torch.full((len(targets), width - 1), self.eos_id, dtype=torch.long)
        for row, target in enumerate(targets):
            inputs[row, : len(target) - 1] = torch.tensor(target[:-1], dtype=torch.long)
        rest = decoder(
            input_ids=inputs.to(self.device),
            encoder_hidden_states=encoded[unique[local]],  # keys and values come from the cache
            past_key_values=cache,
            use_cache=True,
        ).last_hidden_state
        return torch.cat([states, rest], dim=1)

    def _token_logprobs(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """log p(label | prefix) per position, a chunk of positions at a time to bound memory."""
        project = self.model.get_output_embeddings()
        chunk = _SCORE_POSITIONS_PER_CHUNK
        parts = []
        for h, y in zip(hidden.split(chunk), labels.split(chunk), strict=True):
            logprobs = project(h).float().log_softmax(dim=-1)
            parts.append(logprobs.gather(1, y[:, None]).squeeze(1))
        return torch.cat(parts).cpu()


def _label_grid(targets: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets right-padded into [texts, longest] labels, and the mask of real tokens."""
    width = max(len(t) for t in targets)
    labels = torch.full((len(targets), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(labels, dtype=torch.bool)
    for row, target in enumerate(targets):
        labels[row, : len(target)] = torch.tensor(target, dtype=torch.long)
        mask[row, : len(target)] = True
    return labels, mask
