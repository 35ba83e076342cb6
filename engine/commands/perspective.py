"""``python -m engine perspective``: how well an image agrees with vanishing points, as one JSON object.

Prints the length-weighted share of LSD line segments within 1, 2 and 5 degrees of the direction to some
vanishing point, the median error, the segment count, and, given a pixel-aligned reference, the perspective loss
of Upadhyay et al. VPs are pixels (u right, v down, integer coordinates at pixel centres); a far-away VP is fine,
and X,Y,0 is a direction at infinity.
"""

from __future__ import annotations

import json
import logging
import sys

log = logging.getLogger(__name__)

NAME = "perspective"
HELP = "Score an image's straight edges against vanishing points (JSON: inlier shares, median error, loss)."


def add_arguments(parser) -> None:
    parser.add_argument("--image", required=True, help="the image to score (PNG, JPEG...)")
    parser.add_argument("--vp", action="append", default=[], metavar="X,Y[,W]",
                        help="a vanishing point in pixels (repeat for each); X,Y,0 is a direction at infinity; "
                        "write --vp=X,Y when X is negative")
    parser.add_argument("--vps", metavar="JSON", help="a vps.json file (key 'vps': rows [x, y, w]), e.g. from a "
                        "perspective dataset; adds to --vp")
    parser.add_argument("--reference", help="a pixel-aligned reference image: adds the reference 'loss'")
    parser.add_argument("--min-length", type=float, default=None,
                        help="ignore LSD segments shorter than this many pixels (default 10)")


def load_image(path: str, what: str = "image"):
    """HxWx3 float32 in [0, 1], read by ``engine.io`` (as displayed: EXIF orientation applied)."""
    import numpy as np

    from ..io import read_photo

    return read_photo(path, what).astype(np.float32) / 255.0


def read_vps(args) -> list:
    from ..perspective.vanishing import parse_vp, read_vps_file

    vps = [parse_vp(text) for text in args.vp]
    if args.vps:
        vps += [tuple(row) for row in read_vps_file(args.vps)["vps"]]
    return vps


def run(args) -> int:
    from ..errors import EngineError
    from ..perspective.metric import DEFAULT_MIN_LENGTH, perspective_report

    try:
        vps = read_vps(args)
        if not vps:
            raise ValueError("give at least one vanishing point with --vp X,Y or --vps FILE")
        image = load_image(args.image)
        reference = load_image(args.reference, "reference image") if args.reference else None
    except (EngineError, OSError, ValueError) as error:
        log.error("perspective: %s", error)
        return 2
    if reference is not None and reference.shape != image.shape:
        log.error("perspective: the reference is %dx%d but the image is %dx%d; give a pixel-aligned reference of "
                  "the same size", reference.shape[1], reference.shape[0], image.shape[1], image.shape[0])
        return 2
    min_length = DEFAULT_MIN_LENGTH if args.min_length is None else args.min_length
    sys.stdout.write(json.dumps(perspective_report(image, vps, reference, min_length)) + "\n")
    return 0
