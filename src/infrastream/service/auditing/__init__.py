"""The auditing wing: the hash-chained trail, its signed checkpoints, verification, search,
export and evidence packs. Use cases append to the trail (`trail.record`) in their own
transactions; everything else here reads it."""
