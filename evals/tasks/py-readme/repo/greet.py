"""Greet someone by name: python3 greet.py NAME [--shout]."""

import argparse


def greeting(name, shout=False):
    """The greeting for name, in capitals when shouting."""
    text = f"Hello, {name}!"
    return text.upper() if shout else text


def main():
    parser = argparse.ArgumentParser(description="Greet someone by name.")
    parser.add_argument("name", help="who to greet")
    parser.add_argument("--shout", action="store_true", help="greet in capitals")
    args = parser.parse_args()
    print(greeting(args.name, args.shout))


if __name__ == "__main__":
    main()
