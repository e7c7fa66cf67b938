"""``python -m hybridtrt.converters`` prints the operator support table (docs/OPERATORS.md)."""

from __future__ import annotations

from hybridtrt.converters import markdown_table


def main() -> None:
    """Print the markdown support table to stdout."""
    print(markdown_table(), end="")


if __name__ == "__main__":
    main()
