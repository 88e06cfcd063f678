"""Write a small camera-motion video dataset: film-like scenes filmed by a panning or zooming camera.

Four classes in two time-reversed pairs, pan up / pan down and zoom in / zoom out, so that single
frames carry no label and only the order of frames does. Every clip films its own scene: a sky
gradient, ground, and a few dozen textured shapes at several depths of blur. The camera is a window
that moves (pan) or shrinks (zoom) over the scene, resampled to ``--size`` pixels.

Usage: python benchmarks/camera_motion.py OUT [--train-per-class 60] [--val-per-class 20] [--size 112]
       [--frames 16] [--seed 0]
Writes OUT/videos/<class>/*.mp4, OUT/train.txt, OUT/val.txt and OUT/classes.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from laps.data.annotations import save_classes
from laps.data.encoding import write_video

CLASSES = ("pan_up", "pan_down", "zoom_in", "zoom_out")
SCENE = 320  # scene side in pixels; the camera sees 160 to 240 of it


def scene(rng: np.random.Generator) -> Image.Image:
    """A film-like still: a sky gradient, a ground plane, textured shapes, some of them blurred."""
    top, bottom = rng.uniform(60, 220, 3), rng.uniform(30, 160, 3)
    rows = np.linspace(0, 1, SCENE)[:, None, None]
    pixels = (top * (1 - rows) + bottom * rows) * np.ones((1, SCENE, 1))
    horizon = int(rng.uniform(0.3, 0.7) * SCENE)
    pixels[horizon:] = rng.uniform(20, 140, 3) + rng.normal(0, 12, (SCENE - horizon, SCENE, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    for layer in range(3):  # far (blurred) to near (sharp)
        overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)
        for _ in range(int(rng.integers(6, 14))):
            x, y = rng.uniform(0, SCENE, 2)
            w, h = rng.uniform(8, 60, 2) * (1 + layer * 0.5)
            colour = tuple(int(c) for c in rng.uniform(0, 255, 3)) + (255,)
            kind = int(rng.integers(3))
            if kind == 2:
                draw.polygon([(x, y - h / 2), (x + w / 2, y + h / 2), (x - w / 2, y + h / 2)], fill=colour)
            else:
                (draw.ellipse if kind else draw.rectangle)((x - w / 2, y - h / 2, x + w / 2, y + h / 2), fill=colour)
        overlay = overlay.filter(ImageFilter.GaussianBlur(2.5 - layer))
        image.paste(overlay, (0, 0), overlay)
    noise = rng.normal(0, 6, (SCENE, SCENE, 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8))


def film(still: Image.Image, label: int, frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """The frames ``(T, size, size, 3)`` a camera records over ``still``; odd labels reverse their pair's motion."""
    side = rng.uniform(160, 200)
    travel = rng.uniform(50, 80)  # pan: pixels over the clip; zoom: the window shrinks by this
    cx, cy = rng.uniform(side / 2 + 40, SCENE - side / 2 - 40, 2)
    boxes = []
    for t in np.linspace(0, 1, frames):
        if label < 2:  # pan up: the camera moves up, the scene moves down in the frame
            s, x, y = side, cx, cy + travel * (0.5 - t)
        else:  # zoom in: the window shrinks around a fixed centre
            s, x, y = side + travel * (0.5 - t), cx, cy
        boxes.append((x - s / 2, y - s / 2, x + s / 2, y + s / 2))
    clip = np.stack([np.asarray(still.resize((size, size), Image.BICUBIC, box=box)) for box in boxes])
    return clip if label % 2 == 0 else clip[::-1].copy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--train-per-class", type=int, default=60)
    parser.add_argument("--val-per-class", type=int, default=20)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    lines = {"train": [], "val": []}
    for label, name in enumerate(CLASSES):
        (out / "videos" / name).mkdir(parents=True, exist_ok=True)
        for i in range(args.train_per_class + args.val_per_class):
            rng = np.random.default_rng([args.seed, label, i])
            rel = f"videos/{name}/{name}_{i:04d}.mp4"
            write_video(out / rel, film(scene(rng), label, args.frames, args.size, rng), 8, crf=20)
            lines["train" if i < args.train_per_class else "val"].append(f"{rel} {label}\n")
    for split, split_lines in lines.items():
        (out / f"{split}.txt").write_text("".join(split_lines))
    save_classes(out / "classes.json", CLASSES)
    print(f"wrote {sum(map(len, lines.values()))} videos to {out}")


if __name__ == "__main__":
    main()
