"""Print the total of an order given as NAME:PRICE:QUANTITY arguments."""

import sys

import orders


def parse(argument):
    name, price, quantity = argument.split(":")
    return name, float(price), int(quantity)


def main(argv):
    lines = [parse(argument) for argument in argv]
    print(f"{orders.calc_total(lines):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
