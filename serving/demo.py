"""The serving half of `make demo` / `make serve`: start the model server on the exported models, query it over REST
and gRPC, print the answers, and stop it (or, with --serve, keep serving and print how to query it).

    python -m serving.demo [--serve] [--export_base=saved_models] [--port=8500] [--rest_api_port=8501]
    seqzoo-demo [--serve] ...          (the same command, from any directory)

It expects `adding`, `latching`, `lm`, `dates`, `babi`, `listops` and `speech` exports under --export_base (the Makefile trains
and exports them first).
"""

import datetime
import importlib.resources
import json
import os
import subprocess
import time
import urllib.request

from absl import flags

from training.startup import import_tensorflow
from training.startup import run

import_tensorflow()

import numpy as np  # noqa: E402

from serving.client import Client  # noqa: E402
from serving.client import ServingClientError  # noqa: E402
from serving.commands import module_command  # noqa: E402
from training import tasks  # noqa: E402
from training.data import dates as dates_data  # noqa: E402
from training.data import listops  # noqa: E402

FLAGS = flags.FLAGS
MODELS = ("adding", "latching", "lm", "dates", "babi", "listops", "speech")
# Dates the translator has never seen (its test dates are drawn from the same range; these are written by hand).
HUMAN_DATES = ("25 November 2026", "nov 25 '26", "Wednesday, 25.11.2026", "2026/11/25", "le 1er mars 1999",
               "am 9. Oktober 1977", "jueves, 3 de junio de 2049")
# Inputs unlike anything in training (no year, an impossible day, the US order, words that are no date), where the
# model is unsure and greedy decoding and beam search are most likely to part ways.
ODD_DATES = ("25 Nov", "November 2026", "31.02.2026", "11/25/2026", "tomorrow", "Mittwoch", "2026", "25", "le 1er",
             "12.13.14", "March the fourth", "1.1.", "'26", "el 5 de", "Sunday, 30 February", "19/19/1919")
# A short story in the words of the generated QA1 stories, and questions about it (the memory network's answers are
# "office" and "kitchen": the place of each actor's last move).
STORY = ("Mary moved to the bathroom.\nJohn went to the hallway.\nMary travelled to the office.\n"
         "Daniel journeyed to the garden.\nJohn went back to the kitchen.")
QUESTIONS = ("Where is Mary?", "Where is John?")
# A ListOps expression of depth 3, written by hand: every operator once, lists of two to four arguments (value 5).
EXPRESSION = "[SM 2 [MIN 9 7 ] [MAX 3 5 [MED 1 8 6 ] ] 0 ]"
# Digit strings for the speech model, spoken by eSpeak NG in a voice it never heard (the first test voice of the
# demo run's seed, 0): the words, and the rate (words per minute) and pitch of each.
SPOKEN = (("four two seven", 160, 40), ("nine one one", 180, 60), ("three eight zero five six", 150, 50))
SPEECH_SEED = 0
# The batching and monitoring configs, read from the installed package (package data), not the current directory.
CONFIGS = importlib.resources.files("serving") / "configs"
flags.DEFINE_bool("serve", False, "Keep serving after the queries, until Ctrl-C.")
flags.DEFINE_string("export_base", "saved_models", "The serving base path with models.config.")
flags.DEFINE_integer("port", 8500, "gRPC port.")
flags.DEFINE_integer("rest_api_port", 8501, "REST port.")


def start_server():
    arguments = [
        f"--model_config_file={os.path.join(FLAGS.export_base, 'models.config')}",
        f"--port={FLAGS.port}", f"--rest_api_port={FLAGS.rest_api_port}",
        "--enable_batching", f"--batching_parameters_file={CONFIGS / 'batching.config'}",
        f"--monitoring_config_file={CONFIGS / 'monitoring.config'}", "--enable_grpc_healthcheck_service",
    ]
    print("$ seqzoo-server " + " ".join(_shown(argument) for argument in arguments), flush=True)
    server = subprocess.Popen(module_command("serving.server") + arguments)
    rest = Client.connect(f"127.0.0.1:{FLAGS.rest_api_port}", "rest", timeout=5)
    deadline = time.time() + 120
    while True:
        try:
            if all(rest.status(m)[0]["state"] == "AVAILABLE" for m in MODELS):
                return server
        except ServingClientError:
            pass
        if server.poll() is not None or time.time() > deadline:
            server.kill()
            raise SystemExit("the server did not start; see its messages above")
        time.sleep(0.2)


def queries():
    rest = Client.connect(f"127.0.0.1:{FLAGS.rest_api_port}", "rest")
    grpc = Client.connect(f"127.0.0.1:{FLAGS.port}", "grpc")
    adding = tasks.get("adding")
    config = {**adding.presets["short"], "seed": 7, "train_size": 1, "validation_size": 1, "test_size": 3}
    x, y = adding.generate(config, 3, np.random.default_rng(7))
    print("\nadding (T = 30): each sequence has two marked values; the model must add them")
    by_rest = rest.predict("adding", x)["sum"]
    by_grpc = grpc.predict("adding", x)["sum"]
    for sequence, target, a, b in zip(x, y[:, 0], by_rest, by_grpc):
        marked = sequence[sequence[:, 1] == 1.0, 0]
        print(f"  {marked[0]:.3f} + {marked[1]:.3f} = {target:.3f}   REST :predict {a:.3f}   gRPC Predict {b:.3f}")
    examples = [{"x0": s[:, 0].tolist(), "x1": s[:, 1].tolist()} for s in x]
    print("  REST :regress (tf.Examples):", [round(v, 3) for v in rest.regress("adding", examples, "regress")])
    latching = tasks.get("latching")
    config = {**latching.presets["short"], "seed": 7}
    x, y = latching.generate(config, 16, np.random.default_rng(7))
    chosen = np.concatenate([np.flatnonzero(y[:, 0] > 0)[:2], np.flatnonzero(y[:, 0] < 0)[:2]])
    x, y = x[chosen], y[chosen]
    print("\nlatching (T = 20): the class is set by the first 3 steps, then 17 steps of noise")
    classes = grpc.classify("latching", [{"x0": s[:, 0].tolist()} for s in x], "classify")
    for sequence, target, result in zip(x, y[:, 0], classes):
        best = max(result, key=lambda pair: pair[1])
        truth = "positive" if target > 0 else "negative"
        print(f"  first steps {sequence[0, 0]:+.0f}: truth {truth:8s}  gRPC Classify {best[0]} ({best[1]:.3f})")
    print("\nlm: an LSTM language model of a small grammar (subject-verb agreement across relative clauses)")
    prompts = ["", "a big dog that", "some cats that chase a bird"]
    greedy = rest.predict("lm", {"prompt": np.array(prompts, dtype=object)})
    for prompt, text in zip(prompts, greedy["text"]):
        print(f"  REST greedy   {prompt!r:32} -> {_text(text)!r}")
    count = len(prompts)
    sampled = grpc.predict("lm", {"prompt": np.array(prompts, dtype=object),
                                  "temperature": np.full(count, 1.0, np.float32), "top_k": np.zeros(count, np.int32),
                                  "top_p": np.full(count, 0.9, np.float32), "seed": np.arange(count, dtype=np.int64)},
                           signature="sample")
    for prompt, text in zip(prompts, sampled["text"]):
        print(f"  gRPC sample   {prompt!r:32} -> {_text(text)!r}")
    sentences = ["a dog that sees some cats runs", "a dog that sees some cats run"]
    scored = rest.predict("lm", {"sentences": np.array(sentences, dtype=object)}, signature="score")
    for sentence, perplexity in zip(sentences, scored["perplexity"]):
        print(f"  REST score    {sentence!r:36} perplexity {float(perplexity):.2f}")
    dates(rest, grpc)
    memory(rest)
    list_values(rest)
    spoken_digits(rest, grpc)
    print("\nstatus over REST:", json.dumps(rest.status("adding")))
    with urllib.request.urlopen(f"http://127.0.0.1:{FLAGS.rest_api_port}/monitoring/prometheus/metrics") as page:
        counts = [line for line in page.read().decode().splitlines() if line.startswith(":tensorflow:serving:request_count")]
    print("metrics:", *counts, sep="\n  ")
    grpc.close()


def dates(rest, grpc):
    """The date translator: a few human dates over REST and gRPC, then greedy decoding against beam search."""
    print("\ndates: an encoder-decoder with Bahdanau attention writes dates in ISO 8601, character by character")
    by_rest = rest.predict("dates", {"source": np.array(HUMAN_DATES, dtype=object)})
    by_grpc = grpc.predict("dates", {"source": np.array(HUMAN_DATES, dtype=object)})
    for source, a, b in zip(HUMAN_DATES, by_rest["translation"], by_grpc["translation"]):
        print(f"  {source:28} -> REST {_text(a)}   gRPC {_text(b)}")
    # Greedy decoding (beam 1) against beam search (beam 4), row by row through the `translate` signature: every date
    # form of a few dates, and odd inputs. Only a difference the model really makes is shown.
    candidates = list(ODD_DATES) + [dates_data.render(date, form, language)
                                    for date in (datetime.date(1968, 7, 21), datetime.date(2031, 12, 1))
                                    for form, language in dates_data.variants()]
    found = []
    for start in range(0, len(candidates), 32):  # 2 x 32 rows: the demo server's largest batch
        chunk = candidates[start : start + 32]
        count = len(chunk)
        outputs = grpc.predict("dates", {"source": np.array(chunk * 2, dtype=object),
                                         "beam_size": np.array([1] * count + [4] * count, np.int32),
                                         "max_length": np.full(2 * count, 12, np.int32)}, signature="translate")
        texts, log_probs = [_text(t) for t in outputs["translation"]], outputs["log_prob"]
        for row, source in enumerate(chunk):
            if texts[row] != texts[count + row]:
                found.append((source, texts[row], float(log_probs[row]), texts[count + row],
                              float(log_probs[count + row])))
    print(f"  greedy (beam 1) and beam search (beam 4) over gRPC :translate, on {len(candidates)} inputs: "
          f"{len(found)} differ")
    for source, greedy, greedy_log_prob, beam, beam_log_prob in found[:3]:
        print(f"  {source!r:24} greedy {greedy!r} (log P {greedy_log_prob:.2f})   beam {beam!r} (log P "
              f"{beam_log_prob:.2f})")
    if not found:
        print("  (none: on these inputs the trained model's first choices are its best sequences; the n-best list "
              "below shows how beam search ranks the alternatives)")
    source = found[0][0] if found else ODD_DATES[0]
    nbest = rest.predict("dates", {"source": np.array([source], dtype=object)}, signature="nbest")
    print(f"  REST :predict nbest for {source!r}:")
    for text, score in zip(nbest["translations"][0], nbest["scores"][0]):
        print(f"    {_text(text)!r:14} score {float(score):.3f}")


def memory(rest):
    """The memory network: questions about a short story over REST, each answer with the sentences every hop read."""
    print("\nbabi: an end-to-end memory network answers questions about a story, one sentence a line")
    for number, sentence in enumerate(STORY.split("\n"), 1):
        print(f"  {number}. {sentence}")
    outputs = rest.predict("babi", {"story": np.array([STORY] * len(QUESTIONS), dtype=object),
                                    "question": np.array(QUESTIONS, dtype=object)})
    for row, question in enumerate(QUESTIONS):
        answer, probability = _text(outputs["answer"][row]), float(outputs["probability"][row])
        print(f"  REST {question!r:18} -> {answer!r} (p {probability:.3f})")
        first = int(outputs["dropped"][row]) + 1  # kept sentence i is line dropped + i of the story
        for hop, weights in enumerate(outputs["attention"][row], 1):
            # The sentence the hop read most, and any other it gave at least half as much weight.
            order = np.argsort(-weights)
            read = [i for i in order[:2] if weights[i] >= 0.5 * weights[order[0]]]
            shown = "; ".join(f"{first + i}. {_text(outputs['memory'][row][i])!r} ({weights[i]:.2f})" for i in read)
            print(f"    hop {hop}: {shown}")


def list_values(rest):
    """The ListOps Tree-LSTM: one expression over REST, its answer and the value the model computed at every node
    that has one (lists and digits, children before their parents), each beside the correct value."""
    print("\nlistops: a Tree-LSTM computes a nested list expression's value, composing over its tree")
    outputs = rest.predict("listops", {"expression": np.array([EXPRESSION], dtype=object)})
    tokens = EXPRESSION.split()
    value = int(outputs["value"][0])
    print(f"  REST {EXPRESSION!r} -> {value} (p {float(outputs['probabilities'][0][value]):.3f})   correct "
          f"{listops.evaluate(EXPRESSION)}")
    print("  the value at each node (post-order: every node after its children):")
    rows = []
    for node in range(int(outputs["nodes"][0])):
        computed = int(outputs["node_values"][0][node])
        if computed < 0:  # an operator, or the inner node of a binarised list: no value of its own
            continue
        text = " ".join(tokens[int(outputs["starts"][0][node]) : int(outputs["ends"][0][node]) + 1])
        rows.append((text, computed, listops.evaluate(text)))
    width = max(len(text) for text, _, _ in rows)
    for text, computed, correct in rows:
        mark = "" if computed == correct else "   (wrong)"
        print(f"    {text:{width}} model {computed}   correct {correct}{mark}")


def spoken_digits(rest, grpc):
    """The speech model: digit strings synthesized in a voice held out of its training, sent as WAV files (REST:
    base64 in JSON, as TF Serving's API has it; gRPC: a string tensor), each transcript beside what was said."""
    from training.data import espeak  # eSpeak NG: the speech extra, in the demo's install
    from training.data import speech as speech_data

    variant = speech_data.speaker_splits(SPEECH_SEED)["test"][0]
    print(f"\nspeech: a CTC acoustic model transcribes spoken digits, synthesized in a voice it never heard "
          f"(eSpeak NG, en-us + {variant})")
    specs = [speech_data.Spec(text, espeak.Voice("en-us", variant), rate, pitch, 50, 1, -6.0, None, "white", 0)
             for text, rate, pitch in SPOKEN]
    examples = speech_data.render_all(specs)
    wavs = np.array([speech_data.wav_bytes(example.audio) for example in examples], dtype=object)
    by_rest = rest.predict("speech", {"wav": wavs})["transcript"]
    by_grpc = grpc.predict("speech", {"wav": wavs})["transcript"]
    for example, a, b in zip(examples, by_rest, by_grpc):
        seconds = len(example.audio) / speech_data.SAMPLE_RATE
        print(f"  said {example.text!r:28} ({seconds:.1f} s of WAV)   REST {_text(a)!r}   gRPC {_text(b)!r}")


def _shown(argument):
    """A flag as the echoed command shows it: a path inside the current directory made relative."""
    name, sep, value = argument.partition("=")
    if sep and os.path.isabs(value) and not os.path.relpath(value).startswith(".."):
        return f"{name}={os.path.relpath(value)}"
    return argument


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def main(argv):
    del argv
    server = start_server()
    try:
        queries()
        if FLAGS.serve:
            url = f"http://localhost:{FLAGS.rest_api_port}/v1/models/adding"
            print(f"\nserving until Ctrl-C. Try:\n  curl {url}\n  curl {url}/metadata\n"
                  f"  curl -X POST {url}:predict -d '{{\"instances\": [[[0.5, 1], [0.2, 0], [0.3, 1]]]}}'\n"
                  f"  seqzoo-client --server=localhost:{FLAGS.port} --protocol=grpc --model=adding "
                  "--input='[[[0.5, 1], [0.2, 0], [0.3, 1]]]'\n"
                  f"  curl -X POST http://localhost:{FLAGS.rest_api_port}/v1/models/lm:predict "
                  "-d '{\"instances\": [{\"prompt\": \"a big dog that\"}]}'\n"
                  f"  curl -X POST http://localhost:{FLAGS.rest_api_port}/v1/models/lm:predict -d '{{\"signature_name\": "
                  "\"sample\", \"instances\": [{\"prompt\": \"some cats\", \"temperature\": 0.8, \"top_k\": 0, "
                  "\"top_p\": 0.9, \"seed\": 7}]}'\n"
                  f"  curl -X POST http://localhost:{FLAGS.rest_api_port}/v1/models/dates:predict "
                  "-d '{\"instances\": [\"25 November 2026\", \"nov 25 '\\''26\"]}'\n"
                  f"  curl -X POST http://localhost:{FLAGS.rest_api_port}/v1/models/dates:predict "
                  "-d '{\"signature_name\": \"translate\", \"instances\": [{\"source\": \"25 Nov\", "
                  "\"beam_size\": 1, \"max_length\": 12}]}'\n"
                  f"  curl -X POST http://localhost:{FLAGS.rest_api_port}/v1/models/babi:predict "
                  "-d '{\"instances\": [{\"story\": \"Mary moved to the bathroom.\\nJohn went to the hallway.\", "
                  "\"question\": \"Where is Mary?\"}]}'\n"
                  f"  curl -X POST http://localhost:{FLAGS.rest_api_port}/v1/models/listops:predict "
                  "-d '{\"instances\": [\"[MAX 2 9 [MIN 4 7 ] 0 ]\"]}'\n"
                  f"  seqzoo-client --server=localhost:{FLAGS.rest_api_port} --protocol=rest --model=speech "
                  "--wav=YOUR_16KHZ_MONO.wav\n"
                  f"  curl http://localhost:{FLAGS.rest_api_port}/monitoring/prometheus/metrics", flush=True)
            server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)
    print("\nserver stopped" if not FLAGS.serve else "")
    return 0


if __name__ == "__main__":
    run(main)
