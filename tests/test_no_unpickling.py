"""Nothing the servers, workers, import or export run unpickles stored bytes (issue 18).

A pickle runs code when it is read, and a digest only proves the bytes are the ones recorded,
not who made them: the only loader of a stored model is :mod:`coe_template.model.model_file`. This
greps the code that serves, so a ``joblib.load`` added anywhere later fails here first.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import PROJECT_ROOT

#: Calls that turn bytes into objects by running what the bytes say.
UNPICKLING = re.compile(
    r"\b(joblib\.load|pickle\.loads?|cloudpickle|dill\b|shelve\b|marshal\.loads?|Unpickler|allow_pickle\s*=\s*True)"
)
#: The one exception, not stored bytes: the trainer's own child process answers its parent through
#: a pipe (coe_template/trainer.py), the trained model pickled by code of this package.
ALLOWED = {("coe_template/trainer.py", "return pickle.loads(answer[0])  # our own child's answer")}


def test_no_code_that_serves_unpickles_anything_but_its_own_training_child():
    found = set()
    for folder in ("coe_template", "handlers", "config"):
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if UNPICKLING.search(line) and not line.lstrip().startswith(("#", "import ", "from ")):
                    found.add((str(path.relative_to(PROJECT_ROOT)), line.strip()))
    assert found == ALLOWED


def test_the_pattern_finds_what_it_forbids():
    for line in ("joblib.load(io.BytesIO(data))", "pickle.loads(b)", "np.load(f, allow_pickle=True)"):
        assert UNPICKLING.search(line), line
    assert not UNPICKLING.search("np.load(buffer, allow_pickle=False)")
    assert isinstance(PROJECT_ROOT, Path)
