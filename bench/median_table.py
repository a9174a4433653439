"""Merges several runs of one benchmark section (files given as arguments, same command each time)
into one: the text of the first run, with every number in every table row replaced by the median
of that number over the runs. Rows are matched by their first cell (and its occurrence); a cell
whose non-numeric text differs between runs keeps the first run's value. A ratio column becomes
the median of the runs' own ratios (each measured beside its baseline), not a ratio of medians."""
import re
import statistics
import sys
from collections import defaultdict

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def table_rows(lines):
    """{(first cell, occurrence): cells} for the table rows (not header separators) of one run."""
    rows, seen = {}, defaultdict(int)
    for line in lines:
        if line.startswith("|") and not set(line.replace("|", "").strip()) <= set("-: "):
            cells = line.strip().strip("|").split("|")
            key = cells[0].strip()
            rows[(key, seen[key])] = cells
            seen[key] += 1
    return rows


def merge_cell(cells):
    first = cells[0]
    skeleton = NUMBER.sub("#", first)
    same = [c for c in cells if NUMBER.sub("#", c) == skeleton]
    if len(same) < 2:
        return first
    columns = list(zip(*(NUMBER.findall(c) for c in same)))
    out, i = [], 0

    def substitute(match):
        nonlocal i
        values = columns[i]
        i += 1
        decimals = len(match.group(0).split(".")[1]) if "." in match.group(0) else 0
        return f"{statistics.median(float(v) for v in values):.{decimals}f}"

    out = NUMBER.sub(substitute, first)
    return out


def main():
    runs = [open(path, encoding="utf-8").read().splitlines() for path in sys.argv[1:]]
    if not runs:
        sys.exit("usage: median_table.py RUN1.md [RUN2.md ...]")
    others = [table_rows(r) for r in runs[1:]]
    seen = defaultdict(int)
    for line in runs[0]:
        is_row = line.startswith("|") and not set(line.replace("|", "").strip()) <= set("-: ")
        if not is_row:
            print(line)
            continue
        cells = line.strip().strip("|").split("|")
        key = cells[0].strip()
        occurrence = seen[key]
        seen[key] += 1
        matches = [o[(key, occurrence)] for o in others if (key, occurrence) in o
                   and len(o[(key, occurrence)]) == len(cells)]
        merged = [cells[0]] + [merge_cell([cells[j]] + [m[j] for m in matches]) for j in range(1, len(cells))]
        print("|" + "|".join(merged) + "|")


if __name__ == "__main__":
    main()
