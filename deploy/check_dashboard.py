#!/usr/bin/env python3
"""Checks the Grafana dashboard and the alert rules against the metrics contract.

    deploy/check_dashboard.py [--dashboard FILE] [--rules FILE] [--names FILE] [--no-promtool]

The dashboard must parse, take its data source from the DS_PROMETHEUS variable, and have panels
that each query Prometheus, sit inside the 24-column grid and overlap no other. Every metric name
a PromQL expression uses, in the dashboard (panels, variables, annotations) or in the alert rules,
must be a Prometheus builtin (`up`, `ALERTS`, ...) or a name in deploy/metric-names.txt, the one
list of the names the processes serve (a histogram's family name stands for its _bucket, _sum and
_count series); and every name in that list must be shown or alerted on somewhere, so a metric
added to the contract is added here too. Finally `promtool check rules` parses every dashboard
expression (written out as recording rules, Grafana's variables replaced by sample values), as
Prometheus itself would.

Python standard library only; exit status 1 with one line per problem.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

DEPLOY = os.path.dirname(os.path.abspath(__file__))

DATASOURCE_VAR = "DS_PROMETHEUS"
DATASOURCE = {"type": "prometheus", "uid": "${%s}" % DATASOURCE_VAR}

# Series Prometheus makes itself: per scrape target, and for alerting rules.
BUILTIN_METRICS = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "ALERTS",
    "ALERTS_FOR_STATE",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# Grafana's own interval variables become a duration; the dashboard's variables (always inside a
# label matcher's string) become a regex matching anything.
GRAFANA_DURATIONS = {"__rate_interval", "__interval", "__range"}
SAMPLE_DURATION = "5m"
VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")

PANELS_WITHOUT_QUERIES = {"row", "text", "dashlist", "news"}
GRID_COLUMNS = 24

PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "atan2", "inf", "nan", "start", "end",
}
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
TOKEN = re.compile(r"(?P<num>\d[\w.]*)|(?P<id>[A-Za-z_:][\w:]*)|(?P<other>.)", re.S)


class Problems(list):
    def add(self, where, what):
        self.append(f"{where}: {what}")


def read_names(path, problems):
    names = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            name = line.strip()
            where = f"{path}:{n}"
            if not name:
                problems.add(where, "empty line (one metric family name per line)")
            elif not METRIC_NAME.match(name) or not name.startswith("mc_"):
                problems.add(where, f"{name!r} is not an mc_ metric name")
            elif name in names:
                problems.add(where, f"{name} is listed twice")
            else:
                names.append(name)
    return set(names)


def replace_variables(expr):
    """Grafana's variables replaced by sample values, and the user variables the expression uses.

    Raises ValueError for a user variable outside a string, where no sample value is right."""
    used = set()
    out = []
    quote = None
    i = 0
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                out.append(expr[i : i + 2])
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        m = VARIABLE.match(expr, i) if c == "$" else None
        if m:
            name = m.group(1) or m.group(2)
            if name in GRAFANA_DURATIONS:
                out.append(SAMPLE_DURATION)
            elif quote:
                used.add(name)
                out.append(".*")
            else:
                raise ValueError(f"variable ${name} outside a string")
            i = m.end()
            continue
        out.append(c)
        i += 1
    return "".join(out), used


def metric_names(expr):
    """The metric names an expression selects (strings, matchers, ranges and grouping removed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    expr = re.sub(r"\{[^{}]*\}", " ", expr)
    expr = re.sub(r"\[[^\[\]]*\]", " ", expr)
    expr = GROUPING.sub(" ", expr)
    names = []
    tokens = [(m.lastgroup, m.group()) for m in TOKEN.finditer(expr)]
    for i, (kind, text) in enumerate(tokens):
        if kind != "id" or text.lower() in PROMQL_KEYWORDS:
            continue
        following = next((t for k, t in tokens[i + 1 :] if not t.isspace()), "")
        if following == "(":
            continue  # a function or aggregation
        names.append(text)
    return names


def known_metric(name, names):
    if name in BUILTIN_METRICS or name in names:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        family = name[: -len(suffix)]
        if name.endswith(suffix) and family in names and not family.endswith(("_total", "_info")):
            return family
    return None


def check_expr(where, expr, names, used_names, problems):
    if not expr or not expr.strip():
        problems.add(where, "empty PromQL expression")
        return
    for name in metric_names(expr):
        family = known_metric(name, names)
        if family:
            used_names.add(family)
        elif name.startswith("mc_"):
            problems.add(where, f"{name} is not in deploy/metric-names.txt (the metrics contract)")
        else:
            problems.add(where, f"{name} is neither an mc_ metric nor a Prometheus builtin")


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def check_layout(panels, problems):
    """Panels inside the grid, none on top of another (Grafana would push one elsewhere)."""
    placed = []
    for p in panels:
        where = f"panel {p.get('id')} {p.get('title')!r}"
        g = p.get("gridPos")
        if not isinstance(g, dict) or not all(isinstance(g.get(k), int) for k in "xywh"):
            problems.add(where, "gridPos needs integer x, y, w and h")
            continue
        if g["x"] < 0 or g["w"] < 1 or g["h"] < 1 or g["x"] + g["w"] > GRID_COLUMNS:
            problems.add(where, f"gridPos {g} lies outside the {GRID_COLUMNS}-column grid")
        for other, og in placed:
            if (
                g["x"] < og["x"] + og["w"]
                and og["x"] < g["x"] + g["w"]
                and g["y"] < og["y"] + og["h"]
                and og["y"] < g["y"] + g["h"]
            ):
                problems.add(where, f"overlaps {other}")
        placed.append((where, g))


def check_dashboard(dashboard, names, problems, used_names, exprs):
    """exprs collects (where, PromQL after variable replacement) for promtool."""
    for key in ("title", "uid", "schemaVersion", "panels", "templating"):
        if key not in dashboard:
            problems.add("dashboard", f"has no {key}")
    variables = dashboard.get("templating", {}).get("list", [])
    defined = {v.get("name") for v in variables}
    ds = [v for v in variables if v.get("name") == DATASOURCE_VAR]
    if not ds or ds[0].get("type") != "datasource" or ds[0].get("query") != "prometheus":
        problems.add("dashboard", f"needs a datasource variable {DATASOURCE_VAR} of Prometheus data sources")

    def expression(where, expr):
        try:
            replaced, used = replace_variables(expr)
        except ValueError as e:
            problems.add(where, str(e))
            return
        for name in sorted(used - defined):
            problems.add(where, f"uses ${name}, which the dashboard does not define")
        check_expr(where, replaced, names, used_names, problems)
        exprs.append((where, replaced))

    for v in variables:
        if v.get("type") != "query":
            continue
        where = f"variable {v.get('name')}"
        if v.get("datasource") != DATASOURCE:
            problems.add(where, f"datasource must be {DATASOURCE}")
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else q or ""
        m = re.fullmatch(r"\s*label_values\(\s*(.*?)\s*,\s*\w+\s*\)\s*", q)
        if not m or not m.group(1):
            problems.add(where, f"query {q!r} is not label_values(<selector>, <label>)")
        else:
            expression(where, m.group(1))

    for a in dashboard.get("annotations", {}).get("list", []):
        if a.get("builtIn"):
            continue
        where = f"annotation {a.get('name')!r}"
        if a.get("datasource") != DATASOURCE:
            problems.add(where, f"datasource must be {DATASOURCE}")
        expression(where, a.get("expr", ""))

    panels = list(all_panels(dashboard.get("panels", [])))
    ids = [p.get("id") for p in panels]
    for i in sorted({i for i in ids if ids.count(i) > 1}, key=str):
        problems.add("dashboard", f"panel id {i} is used more than once")
    check_layout(dashboard.get("panels", []), problems)
    for p in panels:
        where = f"panel {p.get('id')} {p.get('title')!r}"
        if not p.get("title"):
            problems.add(where, "has no title")
        if p.get("type") in PANELS_WITHOUT_QUERIES:
            continue
        if p.get("datasource") != DATASOURCE:
            problems.add(where, f"datasource must be {DATASOURCE}, got {p.get('datasource')!r}")
        targets = p.get("targets") or []
        if not targets:
            problems.add(where, "has no query")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or None in refs:
            problems.add(where, f"queries need distinct refIds, got {refs}")
        for t in targets:
            twhere = f"{where} query {t.get('refId')}"
            if "datasource" in t and t["datasource"] != DATASOURCE:
                problems.add(twhere, f"datasource must be {DATASOURCE}")
            expression(twhere, t.get("expr", ""))


def rule_expressions(path):
    """The `expr:` values of a Prometheus rule file: plain, quoted, or a `>-`/`|` block scalar.

    Enough YAML for rule files, without a YAML parser (promtool checks the file properly)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    found = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(?:-\s+)?expr:\s*(.*?)\s*$", lines[i])
        i += 1
        if not m:
            continue
        indent, value = len(m.group(1)), m.group(2)
        where = f"{path}:{i}"
        if value[:1] in (">", "|"):
            block = []
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                block.append(lines[i].strip())
                i += 1
            value = " ".join(block)
        elif len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        found.append((where, value))
    return found


def promtool_parse(exprs, promtool, problems):
    """Parses each expression with promtool, as recording rules (YAML is a superset of JSON)."""
    groups = [
        {"name": where, "rules": [{"record": f"dashboard:expr_{n}", "expr": expr}]}
        for n, (where, expr) in enumerate(exprs)
    ]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "dashboard-expressions.rules.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"groups": groups}, f, indent=1)
        r = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
    if r.returncode != 0:
        detail = (r.stdout + r.stderr).replace(path, "dashboard").strip()
        problems.add("promtool", "rejects a dashboard expression:\n" + detail)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dashboard", default=os.path.join(DEPLOY, "grafana", "meeting-connector.json"))
    ap.add_argument("--rules", default=os.path.join(DEPLOY, "prometheus", "alerts.yml"))
    ap.add_argument("--names", default=os.path.join(DEPLOY, "metric-names.txt"))
    ap.add_argument("--promtool", default="promtool", help="promtool to parse PromQL with")
    ap.add_argument("--no-promtool", action="store_true", help="check names only, parse nothing")
    args = ap.parse_args(argv)

    problems = Problems()
    names = read_names(args.names, problems)
    used_names, exprs = set(), []
    try:
        with open(args.dashboard, encoding="utf-8") as f:
            dashboard = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        problems.add(args.dashboard, f"not a JSON dashboard: {e}")
        dashboard = None
    if dashboard is not None:
        check_dashboard(dashboard, names, problems, used_names, exprs)
    rules = rule_expressions(args.rules)
    if not rules:
        problems.add(args.rules, "has no expr: to check")
    for where, expr in rules:
        check_expr(where, expr, names, used_names, problems)
    for name in sorted(names - used_names):
        problems.add(args.names, f"{name} is neither on the dashboard nor in an alert")

    if not args.no_promtool:
        if shutil.which(args.promtool) is None:
            problems.add("promtool", f"{args.promtool} not found (Debian package prometheus); or pass --no-promtool")
        elif exprs:
            promtool_parse(exprs, args.promtool, problems)

    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in the dashboard, rules or metric names", file=sys.stderr)
        return 1
    print(
        f"dashboard OK: {len(exprs)} expressions, {len(rules)} alert expressions, "
        f"all {len(names)} contract metrics used"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
