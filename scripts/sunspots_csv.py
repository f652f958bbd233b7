#!/usr/bin/env python3
"""Writes data/frames/sunspots_monthly.csv (columns month, sunspots) from data/frames/sunspots_monthly.dat:
one row per month, January 1749 to December 2008 (3,120 values). The six months of 2009 in the .dat file are
left out: the file marks the values after December 2008 as preliminary."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "data", "frames", "sunspots_monthly.dat")
DST = os.path.join(HERE, "..", "data", "frames", "sunspots_monthly.csv")


def monthly(path=SRC):
    rows = []
    for line in open(path):
        parts = line.split()
        if len(parts) == 13 and parts[0].isdigit():
            year = int(parts[0])
            if year <= 2008:
                rows += [(f"{year}-{m + 1:02d}", float(v)) for m, v in enumerate(parts[1:])]
    if len(rows) != 3120 or rows[0][0] != "1749-01" or rows[-1][0] != "2008-12":
        sys.exit(f"{path}: expected the months 1749-01 … 2008-12, found {len(rows)} rows")
    return rows


def main():
    with open(DST, "w") as f:
        f.write("month,sunspots\n")
        for month, v in monthly():
            f.write(f"{month},{v:g}\n")


if __name__ == "__main__":
    main()
