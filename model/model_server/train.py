"""Train the digit classifier and write it for the server, with its model card.

    python -m model_server.train --out /opt/model/digits.npz --min-accuracy 0.95 \
        --card /opt/model/model-card.json

Refuses to write a model whose held-out accuracy is below --min-accuracy (exit 1),
so an image build with a bad model fails instead of shipping it. The card
(model_server.card) says what the model is and how good it is, for promotion.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_server.card import model_card, write_card
from model_server.classifier import train

DEFAULT_MIN_ACCURACY = 0.95


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_server.train", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="where to write the .npz model")
    parser.add_argument("--min-accuracy", type=float, default=DEFAULT_MIN_ACCURACY)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--card", type=Path, help="where to write model-card.json")
    args = parser.parse_args(argv)
    result = train(seed=args.seed)
    print(
        f"trained on {result.train_size} images, held-out accuracy {result.accuracy:.4f} "
        f"on {result.test_size} (minimum {args.min_accuracy}); version {result.model.version}"
    )
    if result.accuracy < args.min_accuracy:
        print(
            f"train: error: held-out accuracy {result.accuracy:.4f} is below "
            f"{args.min_accuracy}; model not written",
            file=sys.stderr,
        )
        return 1
    result.model.save(args.out)
    print(f"wrote {args.out}")
    if args.card is not None:
        card = model_card(result, args.out)
        write_card(card, args.card)
        print(f"wrote {args.card}: {card['model']['name']} {card['model']['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
