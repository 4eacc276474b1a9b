-- Who funds a sale's points. `points_operator` is the part of `points_earned` the
-- operator pays for (programme-wide rules, tier and plan bonuses, its share of co-funded
-- rules), drawn from `program:funded:<partner>`; the rest comes from the selling
-- partner's `partner:<id>:issued`. Sales written before this migration drew every point
-- from the selling partner, programme-wide rules included, so they keep 0: their points
-- read as the partner's, and their returns take back from the partner alone.
ALTER TABLE transactions ADD COLUMN points_operator INTEGER NOT NULL DEFAULT 0;
