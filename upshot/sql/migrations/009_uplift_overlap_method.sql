-- Issue 13: the share of a cell's decisions whose propensity was clipped, and how `ate`
-- was computed (`dr_score_mean`: the mean of the doubly robust scores over the cell).
ALTER TABLE uplift_estimates ADD COLUMN IF NOT EXISTS clipped_share DOUBLE;
ALTER TABLE uplift_estimates ADD COLUMN IF NOT EXISTS method VARCHAR;
