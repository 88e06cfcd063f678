"""``laps app``: a local page to drop a video on and see what a trained model says about it."""
