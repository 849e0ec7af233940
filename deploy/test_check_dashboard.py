"""Tests of check_dashboard.py: the shipped files pass, and each kind of mistake is reported.

    python3 -m unittest discover -s deploy -p 'test_*.py' -v
"""

import contextlib
import copy
import io
import json
import os
import shutil
import tempfile
import unittest

import check_dashboard as cd

SHIPPED_DASHBOARD = os.path.join(cd.DEPLOY, "grafana", "meeting-connector.json")
SHIPPED_RULES = os.path.join(cd.DEPLOY, "prometheus", "alerts.yml")
SHIPPED_NAMES = os.path.join(cd.DEPLOY, "metric-names.txt")
HAVE_PROMTOOL = shutil.which("promtool") is not None


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def shipped_dashboard():
    with open(SHIPPED_DASHBOARD, encoding="utf-8") as f:
        return json.load(f)


def panel(dashboard, title):
    return next(p for p in cd.all_panels(dashboard["panels"]) if p.get("title") == title)


class Run:
    """Runs the checker on a dashboard, rules and names given as data; keeps its exit and report."""

    def __init__(self, dashboard=None, rules=None, names=None, promtool=False):
        with tempfile.TemporaryDirectory() as d:
            args = []
            if dashboard is not None:
                path = os.path.join(d, "dashboard.json")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(dashboard if isinstance(dashboard, str) else json.dumps(dashboard))
                args += ["--dashboard", path]
            if rules is not None:
                path = os.path.join(d, "alerts.yml")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(rules)
                args += ["--rules", path]
            if names is not None:
                path = os.path.join(d, "names.txt")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(names)
                args += ["--names", path]
            if not promtool:
                args.append("--no-promtool")
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                self.status = cd.main(args)
            self.report = err.getvalue()


class ShippedFiles(unittest.TestCase):
    def test_shipped_dashboard_rules_and_names_pass(self):
        run = Run()
        self.assertEqual(run.status, 0, run.report)

    @unittest.skipUnless(HAVE_PROMTOOL, "promtool not installed")
    def test_promtool_parses_every_shipped_expression(self):
        run = Run(promtool=True)
        self.assertEqual(run.status, 0, run.report)

    def test_every_contract_name_is_listed_once(self):
        names = read(SHIPPED_NAMES).split()
        self.assertEqual(len(names), len(set(names)))
        self.assertIn("mc_zc_join_duration_seconds", names)
        self.assertNotIn("mc_zc_join_duration_seconds_bucket", names)


class DashboardMistakes(unittest.TestCase):
    def test_a_misspelt_metric_is_reported_with_its_panel(self):
        d = shipped_dashboard()
        panel(d, "Meetings per MMR")["targets"][0]["expr"] = 'mc_mmr_meeting{node=~"$node"}'
        run = Run(dashboard=d)
        self.assertEqual(run.status, 1)
        self.assertIn("'Meetings per MMR' query A: mc_mmr_meeting is not in", run.report)

    def test_a_metric_of_another_exporter_is_reported(self):
        d = shipped_dashboard()
        panel(d, "Lease remaining")["targets"][0]["expr"] = "rate(process_cpu_seconds_total[5m])"
        run = Run(dashboard=d)
        self.assertEqual(run.status, 1)
        self.assertIn("process_cpu_seconds_total is neither an mc_ metric nor a Prometheus builtin", run.report)

    def test_a_panel_with_a_fixed_data_source_is_reported(self):
        d = shipped_dashboard()
        panel(d, "Join latency")["datasource"] = {"type": "prometheus", "uid": "abc123"}
        run = Run(dashboard=d)
        self.assertEqual(run.status, 1)
        self.assertIn("'Join latency': datasource must be", run.report)

    def test_a_panel_without_a_query_is_reported(self):
        d = shipped_dashboard()
        panel(d, "Ownership epoch")["targets"] = []
        run = Run(dashboard=d)
        self.assertEqual(run.status, 1)
        self.assertIn("'Ownership epoch': has no query", run.report)
        # ... and the metric only that panel showed is now shown nowhere.
        self.assertIn("mc_ha_ownership_epoch is neither on the dashboard nor in an alert", run.report)

    def test_overlapping_panels_are_reported(self):
        d = shipped_dashboard()
        p = panel(d, "RTP bytes per second")
        p["gridPos"] = dict(panel(d, "RTP packets per second")["gridPos"])
        run = Run(dashboard=d)
        self.assertEqual(run.status, 1)
        self.assertIn("'RTP bytes per second': overlaps panel", run.report)

    def test_a_panel_wider_than_the_grid_is_reported(self):
        d = shipped_dashboard()
        panel(d, "Ownership epoch")["gridPos"]["w"] = 25
        run = Run(dashboard=d)
        self.assertEqual(run.status, 1)
        self.assertIn("outside the 24-column grid", run.report)

    def test_an_undefined_variable_is_reported(self):
        d = shipped_dashboard()
        panel(d, "Meetings per MMR")["targets"][0]["expr"] = 'mc_mmr_meetings{zone=~"$zone"}'
        run = Run(dashboard=d)
        self.assertEqual(run.status, 1)
        self.assertIn("uses $zone, which the dashboard does not define", run.report)

    def test_no_datasource_variable_is_reported(self):
        d = shipped_dashboard()
        d["templating"]["list"] = [v for v in d["templating"]["list"] if v["name"] != "DS_PROMETHEUS"]
        run = Run(dashboard=d)
        self.assertEqual(run.status, 1)
        self.assertIn("needs a datasource variable DS_PROMETHEUS", run.report)

    def test_broken_json_is_reported(self):
        run = Run(dashboard='{"panels": [')
        self.assertEqual(run.status, 1)
        self.assertIn("not a JSON dashboard", run.report)

    @unittest.skipUnless(HAVE_PROMTOOL, "promtool not installed")
    def test_promtool_rejects_an_expression_that_does_not_parse(self):
        d = shipped_dashboard()
        panel(d, "Meetings per MMR")["targets"][0]["expr"] = "sum by (node) (mc_mmr_meetings"
        run = Run(dashboard=d, promtool=True)
        self.assertEqual(run.status, 1)
        self.assertIn("promtool: rejects a dashboard expression", run.report)
        self.assertIn("Meetings per MMR", run.report)


class NamesAndRules(unittest.TestCase):
    def test_an_unused_contract_name_is_reported(self):
        names = read(SHIPPED_NAMES) + "mc_mmr_jitter_seconds\n"
        run = Run(names=names)
        self.assertEqual(run.status, 1)
        self.assertIn("mc_mmr_jitter_seconds is neither on the dashboard nor in an alert", run.report)

    def test_a_bad_names_file_is_reported(self):
        names = read(SHIPPED_NAMES) + "mc_ready\nnode_load1\n"
        run = Run(names=names)
        self.assertEqual(run.status, 1)
        self.assertIn("mc_ready is listed twice", run.report)
        self.assertIn("'node_load1' is not an mc_ metric name", run.report)

    def test_an_alert_on_an_unknown_metric_is_reported(self):
        rules = read(SHIPPED_RULES).replace(
            "expr: mc_ha_peer_up == 0", "expr: mc_ha_peers_up == 0"
        )
        run = Run(rules=rules)
        self.assertEqual(run.status, 1)
        self.assertIn("mc_ha_peers_up is not in", run.report)

    def test_block_scalar_expressions_are_read_whole(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            f.write("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: >-\n"
                    "          sum(rate(mc_a_total[5m]))\n            / on () group_left\n"
                    "          sum(rate(mc_b_total[5m]))\n        for: 1m\n"
                    "      - record: r\n        expr: 'up == 0'\n")
        try:
            exprs = [e for _, e in cd.rule_expressions(f.name)]
        finally:
            os.unlink(f.name)
        self.assertEqual(exprs, ["sum(rate(mc_a_total[5m])) / on () group_left sum(rate(mc_b_total[5m]))", "up == 0"])


class PromQL(unittest.TestCase):
    def test_names_exclude_functions_labels_keywords_and_durations(self):
        expr = ('histogram_quantile(0.99, sum by (node, le) (rate(mc_x_seconds_bucket{mmr="up", '
                'le!="+Inf"}[5m] offset 1h))) / ignoring (reason) group_left () (mc_y > bool 1e3) '
                "and on (job) mc_z unless max without (instance) (mc_w)")
        self.assertEqual(cd.metric_names(expr), ["mc_x_seconds_bucket", "mc_y", "mc_z", "mc_w"])

    def test_grafana_variables_become_sample_values(self):
        replaced, used = cd.replace_variables('rate(mc_a_total{node=~"$node", job=~"${job}"}[$__rate_interval])')
        self.assertEqual(replaced, 'rate(mc_a_total{node=~".*", job=~".*"}[5m])')
        self.assertEqual(used, {"node", "job"})

    def test_a_variable_outside_a_string_is_refused(self):
        with self.assertRaises(ValueError):
            cd.replace_variables("topk($n, mc_a)")

    def test_histogram_series_map_to_their_family(self):
        names = {"mc_zc_join_duration_seconds", "mc_zc_joins_total"}
        self.assertEqual(cd.known_metric("mc_zc_join_duration_seconds_bucket", names), "mc_zc_join_duration_seconds")
        self.assertEqual(cd.known_metric("mc_zc_join_duration_seconds_count", names), "mc_zc_join_duration_seconds")
        self.assertIsNone(cd.known_metric("mc_zc_joins_total_bucket", names))
        self.assertIsNone(cd.known_metric("mc_zc_join_seconds", names))


if __name__ == "__main__":
    unittest.main()
