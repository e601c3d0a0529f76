"""Workloads: YAML specs of user traffic turned into Traces by a SimPy session generator.

``load_spec(path)`` validates a spec; ``generate(spec, window_s=None)`` returns the Trace;
``example_workloads()`` lists the shipped examples in ``workloads/``.
"""

from simkv.workloads.catalog import example_workloads, find_workload
from simkv.workloads.generator import generate
from simkv.workloads.model import WorkloadSpec
from simkv.workloads.spec import load_spec, spec_from_dict, with_overrides

__all__ = ["WorkloadSpec", "example_workloads", "find_workload", "generate", "load_spec",
           "spec_from_dict", "with_overrides"]
