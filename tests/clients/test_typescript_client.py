"""The TypeScript client generated from openapi/spec.yaml compiles with `tsc --strict` and calls the server.

openapi-generator's ``typescript-fetch`` (its jar bundled by the pinned PyPI package
``openapi-generator-cli``, run with Java) generates the client at test time; the TypeScript compiler
pinned in ``.ci/ts/package.json`` (``npm ci --prefix .ci/ts``, as ``.ci/run`` does) type-checks it with
a short script that uses it, then Node runs that script against a live gunicorn: ``POST /predictions``
and a version's quality answered with their typed envelopes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MODEL, PROJECT_ROOT, seeded_registry
from tests.servers import gunicorn

GENERATOR = Path(sys.executable).with_name("openapi-generator-cli")
TSC = PROJECT_ROOT / ".ci" / "ts" / "node_modules" / ".bin" / "tsc"

pytestmark = [
    pytest.mark.skipif(
        shutil.which("java") is None,
        reason="no Java: openapi-generator's jar needs it (apt-get install default-jre-headless)",
    ),
    pytest.mark.skipif(shutil.which("node") is None, reason="no Node.js (apt-get install nodejs npm)"),
    pytest.mark.skipif(not TSC.exists(), reason="TypeScript is not installed: npm ci --prefix .ci/ts"),
    pytest.mark.skipif(
        not GENERATOR.exists(),
        reason="openapi-generator-cli is not installed: pip install -c constraints.txt -e '.[test]'",
    ),
]

#: Uses the generated client as a user would; `tsc --strict` checks it together with the client.
SCRIPT = """\
import {
    Configuration, EventPageEnvelope, ModelsApi, PredictionApi, PredictionsEnvelope, QualityApi, QualityEnvelope,
    RecordedPredictionEnvelope,
} from "./client";

async function main(): Promise<void> {
    const config = new Configuration({ basePath: process.env.BASE_URL });
    const api = new PredictionApi(config);
    const answer: PredictionsEnvelope = await api.predictionsCreate({
        predictionRequest: { texts: [{ text: "Real-time object detection on a Raspberry Pi.", id: "ticket-1" }] },
    });
    const first = answer.data.predictions[0];
    const quality: QualityEnvelope = await new QualityApi(config).versionsQuality({
        modelName: "project-tagger", version: 1,
    });
    // The ledger: read back by id once the server's writer has written it (every half second), then by page.
    let recorded: RecordedPredictionEnvelope | undefined;
    for (let tries = 0; recorded === undefined; tries++) {
        try {
            recorded = await api.predictionsGet({ predictionId: first.predictionId });
        } catch (error: unknown) {
            if (tries > 50) throw error;
            await new Promise((resolve) => setTimeout(resolve, 200));
        }
    }
    const page = await api.predictionsSearch({ modelName: "project-tagger", pageSize: 10 });
    const history: EventPageEnvelope = await new ModelsApi(config).eventsSearch({
        modelName: answer.data.model.name, action: "alias.set",
    });
    console.log(JSON.stringify({
        status: answer.statusCode, model: answer.data.model.name, version: answer.data.model.version,
        tag: first.predictedTag, tags: Object.keys(first.probabilities).sort(),
        timestamp_is_a_date: answer.timestamp instanceof Date,
        labelled: quality.data.quality.labelled, accuracy: quality.data.quality.accuracy,
        echoed: first.id, recorded: [recorded.data.prediction.id, recorded.data.prediction.source],
        listed: page.data.predictions.map((p) => p.predictionId).includes(first.predictionId),
        production_set_to: history.data.events.map((e) => [e.action, e.alias, e.toVersion]),
    }));
}

main().catch((error: unknown) => { console.error(error); process.exit(1); });
"""

TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "target": "es2020",
        "module": "commonjs",
        "moduleResolution": "node",
        "lib": ["es2020", "dom"],
        "types": [],
        "outDir": "dist",
        "skipLibCheck": False,
    },
    "files": ["main.ts", "node.d.ts"],
}

#: `process` without @types/node: the one Node global the script uses.
NODE_GLOBALS = (
    "declare const process: { env: Record<string, string | undefined>; exit(code: number): never };\n"
)


def run(command: list[str], cwd: Path, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    assert done.returncode == 0, f"{command[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done


def test_the_generated_client_compiles_strictly_and_predicts(tmp_path, trained_model):
    run(
        [
            str(GENERATOR),
            "generate",
            "-g",
            "typescript-fetch",
            "-i",
            str(PROJECT_ROOT / "openapi" / "spec.yaml"),
            "-o",
            str(tmp_path / "client"),
            # Generate the multipart body's model (BatchUpload) too: typescript-fetch imports it by name
            # from the operation that also takes JSON, and by default skips models only forms use.
            "--global-property",
            "skipFormModel=false",
        ],
        cwd=tmp_path,
    )
    (tmp_path / "main.ts").write_text(SCRIPT)
    (tmp_path / "node.d.ts").write_text(NODE_GLOBALS)
    (tmp_path / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    run([str(TSC), "--project", "tsconfig.json"], cwd=tmp_path)  # strict: any type error fails here

    store = tmp_path / "store"
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seeded_registry(url, store, trained_model).engine.dispose()
    with gunicorn(
        {"COE_MODEL_STORE": str(store), "DATABASE_URL": url}, tmp_path / "server.log", workers=1
    ) as (base, _process):
        said = run(["node", "dist/main.js"], cwd=tmp_path, timeout=60, env={**os.environ, "BASE_URL": base})
    assert json.loads(said.stdout) == {
        "status": 200,
        "model": MODEL,
        "version": 1,
        "tag": "computer-vision",
        "tags": ["computer-vision", "mlops", "natural-language-processing", "other"],
        "timestamp_is_a_date": True,
        "labelled": 0,  # GET .../quality: no label on record, so no figure
        "accuracy": None,
        "echoed": "ticket-1",
        "recorded": ["ticket-1", "realtime"],
        "listed": True,
        "production_set_to": [["alias.set", "production", 1]],
    }
