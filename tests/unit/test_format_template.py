"""Berth's Go templates print what Docker's CLI prints: every recorded case, and the pieces under them."""

import json
import subprocess
import sys

import pytest

from engine.format import gofmt, gojson, units
from engine.format.template import Template, TemplateError, TemplateParseError
from tests.conftest import ROOT
from tests.unit.format_cases import CASES, DATA, WRAP


def context_data() -> dict:
    """The object ``docker context inspect`` runs its template on, with ``DATA`` as JSON decodes it in Go."""
    return {"Name": "t1", "Metadata": {"Metadata": {"AdditionalFields": json.loads(json.dumps(DATA), parse_int=float)}}}


def outcome(template: str) -> tuple[str, str]:
    try:
        return "ok", Template(WRAP % template).execute(context_data())
    except TemplateParseError as exc:
        return "parse", str(exc)
    except TemplateError as exc:
        return "exec", str(exc)


@pytest.mark.parametrize("template,kind,text", CASES, ids=[c[0][:40] for c in CASES])
def test_a_template_gives_what_docker_printed_for_it(template, kind, text):
    assert outcome(template) == (kind, text)


def test_a_missing_struct_field_is_an_error_and_a_missing_map_key_prints_no_value():
    row = gofmt.Struct("*formatter.ContainerContext", methods={"ID": lambda: "abc"})
    with pytest.raises(TemplateError, match=r"can't evaluate field Nope in type \*formatter.ContainerContext"):
        Template("{{.Nope}}").execute(row)
    assert Template("{{.Nope}}").execute({"ID": "abc"}) == "<no value>"
    with pytest.raises(TemplateError, match='map has no entry for key "Nope"'):
        Template("{{.Nope}}").execute({"ID": "abc"}, missingkey="error")


def test_a_method_with_arguments_is_called_with_them():
    labels = {"com.example.team": "ops"}
    row = gofmt.Struct("ctx", methods={"Label": gofmt.Method(lambda name: labels.get(name, ""), "string")})
    assert Template('{{.Label "com.example.team"}}|{{.Label "nope"}}').execute(row) == "ops|"
    with pytest.raises(TemplateError, match="wrong number of args for Label: want 1 got 0"):
        Template("{{.Label}}").execute(row)


def test_root_variable_and_nested_scopes():
    data = {"Name": "web", "Ports": [80, 443]}
    assert Template("{{range .Ports}}{{$.Name}}:{{.}} {{end}}").execute(data) == "web:80 web:443 "
    assert Template("{{with $n := .Name}}{{$n}}{{end}}").execute(data) == "web"
    with pytest.raises(TemplateParseError, match='undefined variable "\\$n"'):
        Template("{{with $n := .Name}}{{end}}{{$n}}")


def test_go_maps_give_their_zero_value_to_index():
    labels = gofmt.GoMap({"a": "b"}, "map[string]string", zero="")
    assert Template('[{{index . "zz"}}]|{{.zz}}').execute(labels) == "[]|<no value>"
    assert Template('[{{index . "zz"}}]').execute({"a": "b"}) == "[<no value>]"


def test_values_print_as_go_prints_them():
    assert gofmt.value_text([1, "x", True, None, 2.5]) == "[1 x true <nil> 2.5]"
    assert gofmt.value_text({"b": 2, "a": {"c": []}}) == "map[a:map[c:[]] b:2]"
    assert [gofmt.float_text(x) for x in (3.0, 2.5, 1e6, 123456.0, 1e21, 1e-5, 0.0001, -0.0)] == \
        ["3", "2.5", "1e+06", "123456", "1e+21", "1e-05", "0.0001", "-0"]
    assert gofmt.sprintf("%-5s|%05.1f|%q|%x|%5t", "ab", 2.5, "hi", 255, True) == 'ab   |002.5|"hi"|ff| true'
    assert gofmt.sprintf("%d %d", 1) == "1 %!d(MISSING)"
    assert gofmt.sprintf("%d", "x", 2) == "%!d(string=x)%!(EXTRA int=2)"
    assert gofmt.go_quote('a"b\\c\t\x01é\u2028') == '"a\\"b\\\\c\\t\\x01é\\u2028"'


def test_json_is_go_encoding_json():
    value = {"b": [1, 2.5, 1e21, 1e-7, 100.0], "a": "<&>", "c": None, "d": "\u2028\b\x1f"}
    assert gojson.encode(value) == '{"a":"<&>","b":[1,2.5,1e+21,1e-7,100],"c":null,"d":"\\u2028\\b\\u001f"}'
    assert gojson.encode({"a": "<&>"}, escape_html=True) == '{"a":"\\u003c\\u0026\\u003e"}'
    assert gojson.encode({"z": 1, "a": 2}, keep_order=True) == '{"z":1,"a":2}'
    row = gofmt.Struct("ctx", methods={"Size": lambda: "0B", "ID": lambda: "x",
                                       "Label": gofmt.Method(lambda n: n, "string")}, json_methods=True)
    assert gojson.encode(row) == '{"ID":"x","Size":"0B"}'  # argument-less methods only, sorted
    text = gojson.encode_indent([{"Id": "x", "Args": [], "Config": {"Env": ["A=1"]}, "Labels": {}}])
    assert text == json.dumps([{"Id": "x", "Args": [], "Config": {"Env": ["A=1"]}, "Labels": {}}], indent=4)


def test_sizes_and_durations_are_docker_go_units():
    assert [units.human_size(n) for n in (0, 999, 1000, 4_260_000, 999_500, 1.5e12)] == \
        ["0B", "999B", "1kB", "4.26MB", "1e+03kB", "1.5TB"]
    assert units.human_size(123_456_789, 4) == "123.5MB"
    assert [units.bytes_size(n) for n in (512, 1536, 1_610_612_736)] == ["512B", "1.5KiB", "1.5GiB"]
    spans = [0.2, 1, 2, 59, 60, 119, 120, 3599, 3600, 5399, 5400, 47 * 3600, 48 * 3600, 14 * 86400,
             60 * 86400, 2 * 365 * 86400]
    assert [units.human_duration(s) for s in spans] == [
        "Less than a second", "1 second", "2 seconds", "59 seconds", "About a minute", "About a minute",
        "2 minutes", "59 minutes", "About an hour", "About an hour", "2 hours", "47 hours", "2 days", "2 weeks",
        "2 months", "2 years"]


def test_go_time_text_is_time_string():
    env = {"TZ": "UTC", "PYTHONPATH": ROOT}
    code = ("from engine.format.units import go_time_text as g, rfc3339 as r;"
            "print(g(1700000000)); print(g(1700000000, 120000000)); print(r(1700000000))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["2023-11-14 22:13:20 +0000 UTC", "2023-11-14 22:13:20.12 +0000 UTC",
                                "2023-11-14T22:13:20Z"]


def test_the_format_package_imports_only_the_standard_library_and_neither_re_nor_json():
    # -S: no site-packages hooks, so that what is imported is what these modules import
    code = ("import sys; before = set(sys.modules);"
            "import engine.format.template, engine.format.output, engine.format.contexts, "
            "engine.format.tabwriter, engine.format.units, engine.format.gojson;"
            "new = set(sys.modules) - before;"
            "print(sorted(m for m in new if m.split('.')[0] not in sys.stdlib_module_names "
            "and m.split('.')[0] != 'engine'));"
            "print('re' in sys.modules, 'json' in sys.modules)")
    out = subprocess.run([sys.executable, "-S", "-c", code], env={"PYTHONPATH": ROOT}, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert out == ["[]", "False False"]


def test_the_format_package_imports_nothing_of_the_engine_but_its_errors():
    import ast
    from pathlib import Path

    for path in sorted((Path(ROOT) / "engine" / "format").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top == "__future__" or \
                    name.startswith("engine.format") or name in ("engine.errors", "engine.reference"), \
                    f"{path.name} imports {name}"
