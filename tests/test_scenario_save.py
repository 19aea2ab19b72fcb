"""save_scenarios: JSON and YAML written by extension, read back exactly; YAML keeps hex and
carries comments."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from atlab import AtlabError
from atlab.scenario import load_scenarios, parse_scenario, save_scenarios, scenarios_to_yaml

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*ROOT.glob("examples/*.yaml"), *ROOT.glob("tests/data/conformance/*.json")])


@pytest.mark.parametrize("src", SOURCES, ids=[p.name for p in SOURCES])
@pytest.mark.parametrize("ext", [".json", ".yaml"])
def test_round_trip_files(src: Path, ext: str, tmp_path: Path) -> None:
    try:
        scenarios = load_scenarios(src)
    except AtlabError:
        pytest.skip("not an atlab run scenario file")
    out = tmp_path / f"copy{ext}"
    save_scenarios(out, scenarios)
    assert load_scenarios(out) == scenarios
    if ext == ".yaml":
        text = out.read_text()
        assert re.search(r"^ +[A-Z0-9_]+_EL[123]: 0x[0-9a-f]+$", text, re.M)  # hex, unquoted
        assert text.lstrip().startswith("#")


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)


@settings(max_examples=60, deadline=None)
@given(name=names, comment=names, tags=st.lists(names, max_size=3),
       words=st.dictionaries(st.integers(0, (1 << 53) - 1).map(lambda x: x * 8),
                             st.integers(1, (1 << 64) - 1), max_size=5),
       tcr=st.integers(0, (1 << 64) - 1), va=st.integers(0, (1 << 64) - 1),
       par=st.one_of(st.none(), st.integers(0, (1 << 64) - 1)))
def test_round_trip_values(name: str, comment: str, tags: list[str], words: dict[int, int],
                           tcr: int, va: int, par: int | None) -> None:
    sc = parse_scenario({"name": name, "comment": comment, "tags": tags,
                         "features": {"FEAT_ATS1A": False},
                         "sysregs": {"TCR_EL1": tcr, "PSTATE_PAN": 1},
                         "memory": [{"pa": pa, "u64": v} for pa, v in words.items()],
                         "ops": [{"op": "S1E1R", "va": va, "expected_par": par, "pan": 0}]})
    again = parse_scenario(yaml.safe_load(scenarios_to_yaml([sc]))[0])
    assert again == sc


def test_yaml_comments_and_unknown_extension(tmp_path: Path) -> None:
    f = tmp_path / "c.yml"
    f.write_text("# a hand-written file\n- name: x  # trailing comment\n  # inner\n"
                 "  sysregs: {TCR_EL1: 0x5b5103510}\n  ops: []\n")
    sc = load_scenarios(f)[0]
    assert sc.regs["TCR_EL1"] == 0x5B5103510
    save_scenarios(f, [sc])
    assert load_scenarios(f) == [sc]
    with pytest.raises(AtlabError, match="unknown scenario file type"):
        save_scenarios(tmp_path / "x.txt", [sc])
