"""`rtgen-opt verify-bound`: re-check a bound certificate written by `solve --bound-out`."""

from __future__ import annotations

from typing import Annotated

import typer

from rtgen_opt.analysis.certificate_check import read_certificate, same_problem, verify
from rtgen_opt.analysis.dual_check import CertificateInvalid
from rtgen_opt.cli.common import (
    FormatOpt,
    HorizonOpt,
    QuietOpt,
    SetOpt,
    _check_format,
    _display_to,
    _horizon,
    _scenario,
    _taskset,
    app,
)
from rtgen_opt.errors import InputError
from rtgen_opt.report import formats
from rtgen_opt.report.tables import emit
from rtgen_opt.safeload import input_name
from rtgen_opt.units import US_PER_S


@app.command("verify-bound")
def verify_bound(
    certificate: Annotated[str, typer.Argument(metavar="CERT.json", help="The certificate "
                                               "written by solve --bound-out; - reads it "
                                               "from stdin.")],
    scenario: Annotated[str | None, typer.Argument(
        metavar="SCENARIO", help="Built-in name or YAML path (default: the one recorded "
        "in the certificate).")] = None,
    horizon: HorizonOpt = None,
    set_: SetOpt = None,
    format: FormatOpt = "table",
    quiet: QuietOpt = False,
) -> None:
    """Re-check a lower-bound certificate with code that shares nothing with the bound:
    its own chains, its own cost of every placement, its own block damages.

    Exit 0 when the prices prove the value claimed, 1 when they do not (the first
    discrepancy named), 2 when the file is unreadable or written for another task set
    (scenario content, horizon or semantics). The scenario, horizon, --set overrides and
    latency statistic default to those recorded in the certificate.

    Example: rtgen-opt solve scenario_c --horizon 2s --bound-out cert.json &&
    rtgen-opt verify-bound cert.json
    """
    _check_format(format)
    to = _display_to(quiet, {})
    data = read_certificate(certificate)
    certificate = input_name(certificate)
    recorded = data.get("overrides") or []
    latency = data.get("latency", "median")
    if not isinstance(recorded, list) or not all(isinstance(x, str) for x in recorded) \
            or not isinstance(latency, str):
        raise InputError(certificate, "overrides", "a list of KEY=VALUE strings and a "
                         "latency statistic")
    span = _horizon(horizon, set_) if horizon is not None else None
    ts = _taskset(_scenario(scenario or data["scenario"], set_ or recorded, latency),
                  span if span is not None else _recorded_horizon(data), quiet)
    same_problem(ts, data, certificate)
    try:
        value = verify(ts, data, certificate)
    except CertificateInvalid as error:
        answer = {"certificate": certificate, "valid": False, "reason": str(error)}
        emit(format, answer, ["certificate", "valid", "reason"],
             [[certificate, False, str(error)]], f"{certificate}: invalid: {error}",
             records=[answer], to=to)
        raise typer.Exit(1)
    answer = {"certificate": certificate, "valid": True, "kind": data["kind"],
              "claimed": data["value"], "recomputed": value,
              "violations_lower_bound": data["violations_lower_bound"]}
    rows = [[certificate, True, data["kind"], formats.cell(data["value"]), formats.cell(value),
             formats.count(data["violations_lower_bound"])]]
    emit(format, answer,
         ["certificate", "valid", "kind", "claimed", "recomputed", "violations lower bound"],
         rows, f"{certificate}: valid: proves at least "
         f"{formats.count(data['violations_lower_bound'])} weighted violations on "
         f"{ts.scenario}", records=[answer], to=to)


def _recorded_horizon(data: dict):
    from fractions import Fraction

    return Fraction(data["horizon_us"], US_PER_S)
