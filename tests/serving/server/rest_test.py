"""The REST API against TF Serving's rules (tf_serving_api.md §1), through the ASGI app."""

import gzip
import json

import pytest
from starlette.testclient import TestClient

from serving.server.rest import RestApp
from serving.server.rest import RestOptions


@pytest.fixture(scope="module")
def client(server):
    app = RestApp(server.core, RestOptions(max_body_bytes=4096))
    with TestClient(app) as test_client:
        yield test_client


def error(response, status, message):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert message in response.json()["error"], response.json()


# The exchanges of TF Serving's documentation and tests (only version 2, the latest, is loaded: 0.5 x + 3).


def test_predict_row_and_columnar(client):
    response = client.post("/v1/models/half:predict", json={"instances": [1.0, 2.0, 5.0]})
    assert response.status_code == 200 and response.text == '{"predictions": [3.5, 4.0, 5.5]}'
    assert response.headers["content-type"] == "application/json"
    assert client.post("/v1/models/half:predict", json={"inputs": [2.0, 3.0, 4.0]}).text == '{"outputs": [4.0, 4.5, 5.0]}'
    versioned = client.post("/v1/models/half/versions/2:predict", json={"signature_name": "serving_default",
                                                                        "instances": [3.0, 4.0]})
    assert versioned.json() == {"predictions": [4.5, 5.0]}


def test_predict_several_inputs_and_outputs(client):
    body = {"signature_name": "predict_matrix", "instances": [{"x": [1.0, 2.0], "flag": True},
                                                              {"x": [3.0, 4.0], "flag": False}]}
    assert client.post("/v1/models/half:predict", json=body).json() == {
        "predictions": [{"y": [3.5, 4.0], "label": "yes"}, {"y": [4.5, 5.0], "label": "no"}]
    }
    columnar = {"signature_name": "predict_matrix", "inputs": {"x": [[1.0, 2.0]], "flag": [True]}}
    assert client.post("/v1/models/half:predict", json=columnar).json() == {"outputs": {"y": [[3.5, 4.0]],
                                                                                         "label": ["yes"]}}


def test_classify_and_regress(client):
    regress = client.post("/v1/models/half:regress", json={"signature_name": "regress_x_to_y",
                                                            "examples": [{"x": 80.0}, {"x": 2.0}]})
    assert regress.json() == {"results": [43.0, 4.0]}
    classify = client.post("/v1/models/half:classify", json={"signature_name": "classify_x_to_y",
                                                              "context": {"x": 1.0}, "examples": [{"x": 20.0}, {}]})
    # The example's own feature wins over the context's; an example without it takes the context's.
    assert classify.json() == {"results": [[["y", 13.0]], [["y", 3.5]]]}


def test_status_and_metadata(client):
    assert client.get("/v1/models/half").json() == {
        "model_version_status": [{"version": "2", "state": "AVAILABLE",
                                  "status": {"error_code": "OK", "error_message": ""}}]
    }
    assert client.get("/v1/models/half/labels/anything").status_code == 200  # TF Serving ignores the label here
    error(client.get("/v1/models/half/versions/7"), 404, "Could not find version 7 of model half")
    error(client.get("/v1/models/none"), 404, "Could not find any versions of model none")
    metadata = client.get("/v1/models/half/metadata").json()
    assert metadata["model_spec"] == {"name": "half", "signature_name": "", "version": "2"}
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "predict_matrix", "classify_x_to_y", "regress_x_to_y"}
    x = signatures["serving_default"]["inputs"]["x"]
    assert x["dtype"] == "DT_FLOAT" and x["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}],
                                                              "unknown_rank": False}
    assert signatures["classify_x_to_y"]["method_name"] == "tensorflow/serving/classify"


# URL grammar.


def test_url_rules(client):
    error(client.post("/v1/models/half:PREDICT", json={"instances": [1.0]}), 400,
          "Malformed request: POST /v1/models/half:PREDICT")
    error(client.post("/v1/models/half/versions/1/labels/x:predict", json={"instances": [1.0]}), 400,
          "Malformed request")
    error(client.get("/v1/models"), 400, "Missing model name in request.")
    error(client.put("/v1/models/half:predict", json={}), 400, "Malformed request: PUT /v1/models/half:predict")
    error(client.post("/v1/models/half/versions/99999999999999999999:predict", json={"instances": [1.0]}), 400,
          "Failed to convert version: 99999999999999999999 to numeric.")
    error(client.post("/v1/models/ha%21lf:predict", json={"instances": [1.0]}), 404,
          "Servable not found for request: Latest(ha!lf)")
    error(client.post("/v1/models/half/versions/7:predict", json={"instances": [1.0]}), 404,
          "Servable not found for request: Specific(half, 7)")
    error(client.post("/v1/models/half/labels/stable:predict", json={"instances": [1.0]}), 400,
          "Unrecognized servable version label: stable")
    other = client.get("/elsewhere")
    assert other.status_code == 404 and not other.headers["content-type"].startswith("application/json")


# Bad input: each answered as TF Serving answers, and the server keeps serving.


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"", 400, "JSON Parse error: The document is empty"),
        (b'{"instances": [1.0,', 400, "JSON Parse error:"),
        (b"[1, 2]", 400, "Is not object"),
        (b'{"instances": [1.0], "inputs": [1.0]}', 400, "expecting only one of 'inputs' or 'instances' keys to exist"),
        (b'{"signature_name": "nope", "instances": [1.0]}', 400,
         'Serving signature name: "nope" not found in signature def'),
        (b'{"instances": ["a"]}', 400, 'JSON Value: "a" Type: String is not of expected type: float'),
        (b'{"instances": [[1.0], 2.0]}', 400, "Failed to process element: 1 of 'instances' list."),
        (b'{"instances": [[1.0, 2.0]]}', 400, "input x has shape [1,2] but the signature serving_default expects [?]"),
        (b'{"inputs": {"b64": "!!"}}', 400, "Type: Object is not of expected type: float"),
        (b'{"signature_name": "predict_matrix", "instances": [{"x": [1.0, 2.0], "flag": 1}]}', 400,
         "is not of expected type: bool"),
        (b'{"inputs": ' + b"[" * 1900 + b"]" * 1900 + b"}", 400, "JSON Parse error: the document nests too deeply"),
        # Booleans are not numbers (NumPy's conversion would read true as 1.0: the fast path must not take them).
        (b'{"instances": [true, 2.0]}', 400, "JSON Value: true Type: True is not of expected type: float"),
        (b'{"inputs": [2.0, false]}', 400, "JSON Value: false Type: False is not of expected type: float"),
    ],
)
def test_bad_predict_bodies(client, body, status, message):
    error(client.post("/v1/models/half:predict", content=body), status, message)
    assert client.post("/v1/models/half:predict", json={"instances": [1.0]}).status_code == 200


def test_oversized_and_compressed_bodies(client):
    error(client.post("/v1/models/half:predict", content=b'{"instances": [' + b"1.0," * 2000 + b"1.0]}"), 413,
          "Request body is larger than the limit of 4096 bytes")
    packed = gzip.compress(json.dumps({"instances": [1.0] * 500}).encode())  # 3.5 kB inflated, 50 bytes sent
    response = client.post("/v1/models/half:predict", content=packed, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200 and len(response.json()["predictions"]) == 500
    # The inflated body is held to the same limit (TF Serving's is 100 MiB, whatever its body limit).
    bomb = gzip.compress(json.dumps({"instances": [1.0] * 2000}).encode())  # 14 kB inflated, 100 bytes sent
    error(client.post("/v1/models/half:predict", content=bomb, headers={"Content-Encoding": "gzip"}), 413,
          "The decompressed request body is larger than the limit of 4096 bytes")
    error(client.post("/v1/models/half:predict", content=b"not gzip", headers={"Content-Encoding": "gzip"}), 400,
          "Failed to decompress")


def test_errors_never_carry_tracebacks(client):
    response = client.post("/v1/models/half:regress", json={"signature_name": "serving_default",
                                                             "examples": [{"x": 1.0}]})
    assert response.status_code == 400 and "Traceback" not in response.text
