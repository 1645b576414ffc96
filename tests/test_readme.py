"""Every Python example in the README runs as written, with its sizes shrunk (epochs, population,
generations, rounds) so that all of them take a minute or two: a fresh interpreter per example,
in an empty directory, with its own base-model cache."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)

# explicit sizes in the examples, made tiny
SHRINK = [(r"\bepochs=\d+", "epochs=1"), (r"\bpop_size=\d+", "pop_size=6"), (r"\bgenerations=\d+", "generations=2"),
          (r"\brounds=\d+", "rounds=1"), (r'\("n_gen", \d+\)', '("n_gen", 2)'), (r"in range\(\d+\)", "in range(1)")]

# the defaults the examples leave alone, made tiny too (dataclass defaults live on __init__)
PRELUDE = '''
import dataclasses
from evoprune.methods import METHODS

TINY = dict(epochs=1, pop_size=6, generations=2, select=1, finetune_epochs=1, rounds=1, layer_finetune_epochs=1,
            generations_per_layer=2)
for name in METHODS.names():
    cls = METHODS.get(name).config
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    defaults = list(cls.__init__.__defaults__)
    offset = len(names) - len(defaults)
    for key, value in TINY.items():
        if key in names and names.index(key) >= offset:
            defaults[names.index(key) - offset] = value
    cls.__init__.__defaults__ = tuple(defaults)
'''


def test_the_readme_has_python_examples():
    assert len(EXAMPLES) >= 3
    first = EXAMPLES[0]  # the first example starts from the user's own trained model and data
    assert "model=model" in first and "DataLoader" in first


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_a_readme_example_runs_as_written(index, tmp_path):
    code = EXAMPLES[index]
    for pattern, tiny in SHRINK:
        code = re.sub(pattern, tiny, code)
    env = dict(os.environ, EVOPRUNE_CACHE=str(tmp_path / "cache"), TQDM_DISABLE="1")
    done = subprocess.run([sys.executable, "-c", PRELUDE + code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
