"""Reading and writing the user's files: photos, masks, depth maps and the engine's outputs."""
