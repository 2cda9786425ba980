"""csg-data preprocess: raw talking-head footage to checked 25 fps, 512x512 clips."""
