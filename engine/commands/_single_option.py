"""An argparse action for options that take one value: giving one twice is an error, not a silent override
(``--sample a --sample b`` used to run on ``b``)."""

from __future__ import annotations

import argparse


class Once(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, f"_given_{self.dest}", False):
            parser.error(f"{option_string} was given twice ({getattr(namespace, self.dest)!r} and {values!r}); "
                         "give it once")
        setattr(namespace, f"_given_{self.dest}", True)
        setattr(namespace, self.dest, values)
