"""ScoreVI and ADVI build their initial family with one shared piece of code, from their config."""
from __future__ import annotations

import pytest
import torch

from forecasting.bayes import ADVI, ScoreVI, build, make_family
from forecasting.bayes.families import family_from_config


def test_one_implementation():
    assert ScoreVI.make_family is ADVI.make_family


@pytest.mark.parametrize("method,kind", [("scorevi", "diagonal"), ("scorevi", "low_rank"), ("scorevi", "mixture"),
                                         ("advi", "diagonal"), ("advi", "low_rank")])
def test_family_follows_the_config(method, kind):
    cfg = {"family": kind, "init_scale": 0.3, "rank": 2, "components": 2}
    alg = build(method, cfg)
    mean = torch.linspace(-1, 1, 6, dtype=torch.float64)
    got = alg.make_family(6, mean=mean, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    want = make_family(kind, 6, init_scale=0.3, mean=mean, rank=2, components=2, dtype=torch.float64,
                       generator=torch.Generator().manual_seed(0))
    also = family_from_config(alg.config, 6, mean=mean, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert got.kind == want.kind == also.kind == kind
    for name, value in want.state_dict().items():
        assert torch.equal(got.state_dict()[name], value), name
        assert torch.equal(also.state_dict()[name], value), name
