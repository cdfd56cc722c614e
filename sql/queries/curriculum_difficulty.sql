-- Difficulty of each labeled clip of a batch: the weighted mean of four percentile ranks
-- (baseline greedy WER, noise = low SNR tag, duration, speaking rate), bucketed by quantiles.
-- A clip without an snr_db tag (or 'clean') ranks as the cleanest; one not yet labeled as WER 0.
WITH clips AS (
    SELECT c.clip_id, c.duration_s,
           try_cast(c.tags ->> 'snr_db' AS DOUBLE) AS snr_db,
           len(string_split(trim(regexp_replace(c.text, '\s+', ' ', 'g')), ' '))
               / greatest(c.duration_s, 0.1) AS words_per_s,
           r.wer AS baseline_wer
    FROM audio_clips AS c
    LEFT JOIN reward_shaping AS r
           ON r.clip_id = c.clip_id AND r.batch = c.batch AND r.kind = 'greedy'
    WHERE c.batch = $batch AND c.text IS NOT NULL AND trim(c.text) <> ''
),
ranked AS (
    SELECT *,
           percent_rank() OVER (ORDER BY coalesce(baseline_wer, 0)) AS r_wer,
           percent_rank() OVER (ORDER BY coalesce(snr_db, 1e9) DESC) AS r_noise,
           percent_rank() OVER (ORDER BY duration_s) AS r_duration,
           percent_rank() OVER (ORDER BY words_per_s) AS r_rate
    FROM clips
),
scored AS (
    SELECT *,
           ($w_wer * r_wer + $w_noise * r_noise + $w_duration * r_duration + $w_rate * r_rate)
               / ($w_wer + $w_noise + $w_duration + $w_rate) AS difficulty
    FROM ranked
),
cuts AS (
    SELECT quantile_cont(difficulty, $easy_quantile) AS easy_max,
           quantile_cont(difficulty, $hard_quantile) AS medium_max
    FROM scored
)
SELECT s.clip_id, s.duration_s, s.snr_db, s.words_per_s, s.baseline_wer, s.difficulty,
       CASE WHEN s.difficulty <= cuts.easy_max THEN 'easy'
            WHEN s.difficulty <= cuts.medium_max THEN 'medium'
            ELSE 'hard' END AS bucket
FROM scored AS s, cuts
ORDER BY s.difficulty, s.clip_id;
