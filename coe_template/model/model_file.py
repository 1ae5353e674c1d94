"""A version's fitted pipeline as a file that cannot run code when it is read.

``model.skops`` is a :mod:`skops.io` file (a zip of ``schema.json`` and NumPy ``.npy``
arrays, read with ``allow_pickle=False``): it names each object's type, and loading builds
only types it is told to trust. The file comes from the artifact store, a cache or an
imported archive, none of which is trusted, so reading it:

1. bounds the zip (its members' declared sizes) and reads ``schema.json`` as plain JSON;
2. lists every type and node kind the schema names, and refuses the file, naming them,
   unless each is in :data:`TRUSTED_TYPES` and :data:`NODES`; skops's own
   ``get_untrusted_types`` must agree (it trusts more by default: every scikit-learn
   estimator, so the list of our own is the one that counts);
3. only then builds the objects (``skops.io.loads(data, trusted=TRUSTED_TYPES)``);
4. refuses a pipeline whose parameters are not the ones :func:`~coe_template.model.train.build_pipeline`
   makes from the run's own ``args.json``, or whose objects carry an attribute that would
   stand in for a method: the file carries a model's numbers, never behaviour.

The vectorizer's vocabulary is kept as one array of terms (in column order) beside the
pipeline, not as skops's node-per-entry dict: ~0.7 MB and ~20 ms to load, against ~17 MB
and ~1 s as a dict. See ``bench/artifact_fetch.py``.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
import zlib
from typing import Any

import numpy as np
import skops.io as sio
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.pipeline import Pipeline

from coe_template.artifacts.stores import ArtifactError
from coe_template.model.args import ArgsError, parse_args
from coe_template.model.train import build_pipeline

__all__ = ["MAX_UNPACKED_BYTES", "NODES", "TRUSTED_TYPES", "UntrustedModelFile", "dumps", "loads", "types_in"]

#: Every type a model file of this project holds, and nothing else (see the module's docstring).
TRUSTED_TYPES = (
    # the objects train.build_pipeline makes (TfidfTransformer: the vectorizer's own ``_tfidf``)
    "sklearn.pipeline.Pipeline",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.linear_model._logistic.LogisticRegression",
    # their attributes: fitted arrays (read with allow_pickle=False), the vectorizer's ``dtype``
    # (the type numpy.float64 itself, never called on data), and plain containers; numbers,
    # strings and None are JSON in the file, and dict keys are recorded as ``builtins.str``
    "numpy.ndarray",
    "numpy.float64",
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "builtins.str",
)
#: The kinds of skops node those types are written as; any other (functions, methods,
#: ``__reduce__``, operators, bytes...) is refused whatever type it names.
NODES = ("ObjectNode", "DictNode", "ListNode", "TupleNode", "JsonNode", "NdArrayNode", "TypeNode")
#: The most bytes the zip may unpack to (its members' declared sizes, checked before reading).
MAX_UNPACKED_BYTES = 256 << 20
#: The most bytes ``schema.json`` may have: parsed whole, it takes ~10 times that in memory. This
#: project's is ~40 kB (its arrays, the vocabulary included, are ``.npy`` members).
MAX_SCHEMA_BYTES = 4 << 20
#: The deepest nesting of nodes read: a model is ~8 deep; skops builds its tree recursively.
MAX_DEPTH = 64
SCHEMA = "schema.json"
FORMAT = "coe-template-pipeline/1"


class UntrustedModelFile(ArtifactError):
    """A model file that names a type or node kind this project never stores, or is not one of its models."""


def dumps(pipeline: Pipeline) -> bytes:
    """The pipeline as ``model.skops``; ``pipeline`` is left as it was."""
    vectorizer = copy.copy(pipeline[0])
    vocabulary = vectorizer.__dict__.pop("vocabulary_")
    terms = np.empty(len(vocabulary), dtype=object)
    for term, column in vocabulary.items():
        terms[column] = term
    stored = copy.copy(pipeline)
    stored.steps = [(pipeline.steps[0][0], vectorizer), *pipeline.steps[1:]]
    content = {"format": FORMAT, "pipeline": stored, "vocabulary": terms.astype(str)}
    return sio.dumps(content, compression=zipfile.ZIP_DEFLATED)


def types_in(data: bytes, where: str) -> tuple[set[str], set[str]]:
    """Every type and every node kind ``schema.json`` names, read as JSON: nothing is built or imported."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > MAX_UNPACKED_BYTES:
                raise UntrustedModelFile(
                    f"{where}: unpacks to {unpacked} bytes, more than the {MAX_UNPACKED_BYTES} a model "
                    "file may; refusing to load it"
                )
            size = archive.getinfo(SCHEMA).file_size
            if size > MAX_SCHEMA_BYTES:
                raise UntrustedModelFile(
                    f"{where}: its {SCHEMA} has {size} bytes, more than the {MAX_SCHEMA_BYTES} a model's "
                    "may; refusing to load it"
                )
            schema = json.loads(archive.read(SCHEMA))
    except (
        zipfile.BadZipFile,
        KeyError,
        ValueError,
        RecursionError,
        EOFError,
        NotImplementedError,
        RuntimeError,
        zlib.error,
    ) as exc:
        raise UntrustedModelFile(
            f"{where}: not a model file (a skops zip with {SCHEMA}): {exc}; refusing to load it"
        ) from None
    types: set[str] = set()
    nodes: set[str] = set()
    pending: list[tuple[Any, int]] = [(schema, 0)]
    while pending:  # every dict anywhere in the schema: a node hidden in any field is still seen
        value, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise UntrustedModelFile(f"{where}: nested more than {MAX_DEPTH} deep; refusing to load it")
        if isinstance(value, dict):
            if "__loader__" in value:
                nodes.add(str(value["__loader__"]))
                types.add(f"{value.get('__module__')}.{value.get('__class__')}")
            pending.extend((child, depth + 1) for child in value.values())
        elif isinstance(value, list):
            pending.extend((child, depth + 1) for child in value)
    return types, nodes


def loads(data: bytes, args: dict[str, Any], where: str) -> Pipeline:
    """The pipeline in ``data``, built only once every type in it is trusted; ``args``: the run's
    training arguments (its ``args.json``), which the pipeline's parameters must be."""
    types, nodes = types_in(data, where)
    try:
        untrusted = (types | set(sio.get_untrusted_types(data=data))) - set(TRUSTED_TYPES)
    except Exception as exc:  # skops's reader on a file ours accepted: still a file we will not load
        raise UntrustedModelFile(f"{where}: not a readable model file ({exc}); refusing to load it") from None
    strange = nodes - set(NODES)
    if untrusted or strange:
        named = [*sorted(untrusted), *(f"{node} nodes" for node in sorted(strange))]
        raise UntrustedModelFile(
            f"{where}: holds {', '.join(named)}, which a model of this project never holds; "
            "refusing to load it (nothing in it was built)"
        )
    try:
        content = sio.loads(data, trusted=list(TRUSTED_TYPES))
    except Exception as exc:  # trusted types with contents that do not fit them
        raise UntrustedModelFile(f"{where}: cannot be read as a model ({exc}); refusing to load it") from None
    try:
        return _pipeline(content, args, where)
    except UntrustedModelFile:
        raise
    except Exception as exc:  # trusted types holding values of the wrong kind (a dict for steps, ...)
        raise UntrustedModelFile(
            f"{where}: not a model of this project ({type(exc).__name__}: {exc}); refusing to load it"
        ) from None


def _pipeline(content: Any, args: dict[str, Any], where: str) -> Pipeline:
    """The pipeline of a loaded file, its vocabulary restored, refused unless it is the one ``args`` make."""

    def wrong(what: str) -> UntrustedModelFile:
        return UntrustedModelFile(f"{where}: {what}; refusing to load it")

    if not (isinstance(content, dict) and set(content) == {"format", "pipeline", "vocabulary"}):
        raise wrong("not a model file of this project (a format, a pipeline and a vocabulary)")
    if content["format"] != FORMAT:
        raise wrong(f"format {content['format']!r}, this code reads {FORMAT!r}")
    pipeline, terms = content["pipeline"], content["vocabulary"]
    _check_parameters(pipeline, args, wrong)
    vectorizer = pipeline[0]
    if not (isinstance(terms, np.ndarray) and terms.ndim == 1 and terms.dtype.kind == "U"):
        raise wrong("its vocabulary is not a list of terms")
    vocabulary = {term: column for column, term in enumerate(terms.tolist())}
    classifier, columns = pipeline[-1], len(terms)
    shapes = {  # what predicting multiplies together, each a float array of the vocabulary's width
        "idf_": (getattr(vectorizer._tfidf, "idf_", None), (columns,)),
        "coef_": (getattr(classifier, "coef_", None), (None, columns)),
        "intercept_": (getattr(classifier, "intercept_", None), (None,)),
    }
    for name, (array, shape) in shapes.items():
        if not (
            isinstance(array, np.ndarray)
            and array.dtype == np.float64
            and array.ndim == len(shape)
            and all(want in (None, have) for want, have in zip(shape, array.shape, strict=True))
        ):
            raise wrong(f"its {name} is not a float array fitting a vocabulary of {columns} terms")
    if len(vocabulary) != columns or classifier.intercept_.shape[0] != classifier.coef_.shape[0]:
        raise wrong("its vocabulary repeats terms, or its coefficients do not match its intercepts")
    vectorizer.vocabulary_ = vocabulary
    return pipeline


def _check_parameters(pipeline: Any, args: dict[str, Any], wrong: Any) -> None:
    """The parameters ``build_pipeline`` gives for ``args``, and no attribute standing in for a method."""
    try:
        expected = build_pipeline(parse_args(args))
    except ArgsError as exc:
        raise wrong(f"its run's args.json holds {exc}") from None
    shape = [(name, type(step)) for name, step in expected.steps]
    if type(pipeline) is not Pipeline or [(name, type(step)) for name, step in pipeline.steps] != shape:
        raise wrong(f"not the pipeline this project trains ({_describe(expected)})")
    vectorizer = pipeline[0]
    tfidf = vars(vectorizer).get("_tfidf")
    if type(tfidf) is not TfidfTransformer:
        raise wrong("its vectorizer has no fitted weights (a TfidfTransformer)")
    for obj in (pipeline, vectorizer, tfidf, pipeline[-1]):
        shadowing = sorted(name for name in vars(obj) if hasattr(type(obj), name))
        if shadowing:
            raise wrong(f"its {type(obj).__name__} sets {', '.join(shadowing)}, which are its class's")
    found, wanted = pipeline.get_params(deep=True), expected.get_params(deep=True)
    differ = sorted(
        key
        for key in found.keys() | wanted.keys()
        if key not in found
        or key not in wanted
        or (
            type(found[key]) is not type(wanted[key])
            if key == "steps" or hasattr(wanted[key], "get_params")
            else not _same(found[key], wanted[key])
        )
    )
    weights = ("norm", "use_idf", "smooth_idf", "sublinear_tf")
    differ += [
        f"tfidf._tfidf__{name}"
        for name in weights
        if not _same(getattr(tfidf, name, None), wanted[f"tfidf__{name}"])
    ]
    if differ:
        raise wrong(f"its parameters {', '.join(differ)} are not the ones its args.json trains")


def _same(found: Any, wanted: Any) -> bool:
    return type(found) is type(wanted) and found == wanted


def _describe(pipeline: Pipeline) -> str:
    return " -> ".join(type(step).__name__ for _, step in pipeline.steps)
