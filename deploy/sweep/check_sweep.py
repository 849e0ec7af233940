#!/usr/bin/env python3
"""Checks what the schemas cannot see in the sweep's Kubernetes Job and CI workflow.

    deploy/sweep/check_sweep.py

- The shard count is written twice in each (the Job's completions and its SHARDS, the workflow's
  SHARDS and its matrix), and a shard that is never run is only noticed at the merge: they must
  agree, and the matrix must be exactly 1..SHARDS.
- The shell they run parses (`sh -n` for the Job's /bin/sh, `bash -n` for the workflow's steps).
- Every flag they give the scenario runner is one its command line declares: with clap's derive,
  `--foo-bar` is a field `foo_bar:` in sim/src/cli.rs. The runner itself is a simulation build,
  too costly to make here just to ask it for --help.

Needs PyYAML (which kubernetes-validate, ci/requirements-deploy.txt, brings). Exit status 1 with
one line per problem.
"""

import os
import re
import subprocess
import sys

import yaml

SWEEP = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(SWEEP))
JOB = os.path.join(SWEEP, "job.yaml")
WORKFLOW = os.path.join(SWEEP, "github-nightly-sweep.yml")
CLI = os.path.join(ROOT, "sim", "src", "cli.rs")

problems = []


def problem(msg):
    problems.append(msg)


def syntax_ok(shell, script, where):
    r = subprocess.run([shell, "-n"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        problem(f"{where}: {shell} -n: {r.stderr.strip()}")


def runner_flags(script):
    """The --flags of every command in script that runs the scenario runner."""
    joined = script.replace("\\\n", " ")
    flags = set()
    for line in joined.splitlines():
        words = line.split()
        for i, w in enumerate(words):
            if w.endswith("scenario") and i + 1 < len(words) and words[i + 1] in ("run", "merge"):
                flags |= {f.split("=")[0] for f in words[i + 2 :] if f.startswith("--")}
    return flags


def rel(path):
    return os.path.relpath(path, ROOT)


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


job = yaml.safe_load(open(JOB))
spec = job["spec"]
(container,) = spec["template"]["spec"]["containers"]
job_env = env_of(container)
completions = spec.get("completions")
if str(completions) != job_env.get("SHARDS"):
    problem(f"{rel(JOB)}: completions is {completions} but SHARDS is {job_env.get('SHARDS')}")
if spec.get("parallelism", 1) > (completions or 0):
    problem(f"{rel(JOB)}: parallelism {spec.get('parallelism')} exceeds completions {completions}")
if spec.get("completionMode") != "Indexed":
    problem(f"{rel(JOB)}: completionMode must be Indexed (the shard is JOB_COMPLETION_INDEX + 1)")
job_script = "\n".join(container["args"])
syntax_ok("sh", job_script, f"{rel(JOB)}: the shard's script")
scripts = [(rel(JOB), job_script)]

workflow = yaml.safe_load(open(WORKFLOW))
shards = workflow["env"]["SHARDS"]
matrix = workflow["jobs"]["shard"]["strategy"]["matrix"]["shard"]
if matrix != list(range(1, shards + 1)):
    problem(f"{rel(WORKFLOW)}: the shard matrix must be 1..{shards} (SHARDS), is {matrix}")
for name, wjob in workflow["jobs"].items():
    for step in wjob.get("steps", []):
        if "run" in step:
            where = f"{rel(WORKFLOW)}: job {name}, step {step.get('name', step['run'][:30])!r}"
            syntax_ok("bash", step["run"], where)
            scripts.append((rel(WORKFLOW), step["run"]))

cli = open(CLI).read()
declared = set(re.findall(r"^\s*(?:pub\s+)?([a-z][a-z0-9_]*)\s*:", cli, re.M))
used = {}
for where, script in scripts:
    for flag in runner_flags(script):
        used.setdefault(flag, where)
if not {"--shard", "--out"} <= used.keys():
    problem("found no runner command with --shard and --out (check_sweep.py reads the wrong lines?)")
for flag, where in sorted(used.items()):
    if flag[2:].replace("-", "_") not in declared:
        problem(f"{where}: the runner's command line ({rel(CLI)}) declares no {flag}")

for p in problems:
    print(f"error: {p}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"sweep manifests: Job SHARDS = completions = {completions}, workflow SHARDS = matrix = "
      f"1..{shards}, shell parses, the runner declares {' '.join(sorted(used))} ({rel(CLI)})")
