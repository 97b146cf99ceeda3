"""Text conditioners: turn "<sentence> | emotion: <emo> | speaker: <spk>" into a vector.

Paper §3.2: the text of each target sample, with its emotion and speaker, goes through a
pre-trained BERT; the representation is "extrapolated" by fully connected layers with SiLU and a
self-attention layer. Our choice for that head (`ProjectionHead`): the sentence vector is
expanded by FC+SiLU layers into a small set of `num_tokens` learned tokens, a self-attention
layer mixes them, and their mean is projected to `proj_dim`. Both conditioners share it:

- `BertConditioner`: transformers AutoTokenizer/AutoModel from a local directory or hub id;
  sentence vector = pooler output (CLS hidden state when the model has no pooler). With
  freeze=True the BERT weights are not trained and are kept out of parameters()/state_dict()
  (a checkpoint holds only the head; BERT is reloaded from `pretrained`).
- `SentencePieceConditioner`: offline alternative; a sentencepiece model trained on the corpus
  transcripts and condition strings, a small trainable transformer encoder, masked mean pool.
"""
import os

import torch
from torch import nn

from ser.errors import SerError


def condition_text(sentence, emotion, speaker):
    """The conditioning string of one target sample."""
    return f"{' '.join(str(sentence).split())} | emotion: {emotion} | speaker: {speaker}"


class ProjectionHead(nn.Module):
    """in_dim vector → FC/SiLU → num_tokens tokens → self-attention → mean → (B, proj_dim)."""

    def __init__(self, in_dim, proj_dim, num_tokens=4, heads=4):
        super().__init__()
        if proj_dim % heads:
            raise SerError(f"conditioner: proj_dim ({proj_dim}) must be divisible by heads ({heads})")
        self.num_tokens, self.proj_dim = num_tokens, proj_dim
        self.fc = nn.Sequential(nn.Linear(in_dim, proj_dim), nn.SiLU(), nn.Linear(proj_dim, num_tokens * proj_dim),
                                nn.SiLU())
        self.pos = nn.Parameter(torch.randn(num_tokens, proj_dim) * 0.02)
        self.norm = nn.LayerNorm(proj_dim)
        self.attn = nn.MultiheadAttention(proj_dim, heads, batch_first=True)
        self.out = nn.Linear(proj_dim, proj_dim)

    def forward(self, z):
        tokens = self.fc(z).reshape(z.shape[0], self.num_tokens, self.proj_dim) + self.pos
        with torch.autocast(device_type=z.device.type, enabled=False):   # softmax/LayerNorm in fp32
            tokens = tokens.float()
            y = self.norm(tokens)
            tokens = tokens + self.attn(y, y, y, need_weights=False)[0]
        return self.out(tokens.mean(dim=1))


class BertConditioner(nn.Module):
    """Pre-trained BERT sentence vector + `ProjectionHead`.

    Args:
        pretrained: local directory (save_pretrained layout with a tokenizer) or hub id.
        proj_dim: size of the output condition vector.
        freeze: keep BERT fixed (eval mode, no grad, not in parameters()/state_dict()).
    forward(texts: list of str) → (B, proj_dim) on the module's device.
    """

    def __init__(self, pretrained, proj_dim=128, freeze=True, max_length=128, num_tokens=4, heads=4):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(pretrained)
            bert = AutoModel.from_pretrained(pretrained)
        except (OSError, ValueError) as e:
            raise SerError(f"conditioner: cannot load BERT from {pretrained!r}: {str(e).splitlines()[0]}")
        self.pretrained, self.freeze, self.max_length = pretrained, bool(freeze), max_length
        if self.freeze:
            bert.requires_grad_(False)
            bert.eval()
            object.__setattr__(self, "bert", bert)    # unregistered: no parameters/state_dict entries
        else:
            self.bert = bert
        self.head = ProjectionHead(bert.config.hidden_size, proj_dim, num_tokens, heads)
        self.proj_dim = proj_dim

    def _apply(self, fn, *args, **kwargs):
        # .to()/.cuda()/.half() must also reach the unregistered frozen BERT.
        super()._apply(fn, *args, **kwargs)
        if self.freeze:
            self.bert._apply(fn, *args, **kwargs)
        return self

    def train(self, mode=True):
        super().train(mode)
        if self.freeze:
            self.bert.eval()
        return self

    def _device(self):
        return self.head.out.weight.device

    def text_features(self, texts):
        """BERT sentence vectors (B, hidden): pooler output, or the CLS state without a pooler."""
        if isinstance(texts, str):
            texts = [texts]
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        enc = {k: v.to(self._device()) for k, v in enc.items()}
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            out = self.bert(**enc)
        pooled = getattr(out, "pooler_output", None)
        return (pooled if pooled is not None else out.last_hidden_state[:, 0]).float()

    def forward(self, texts):
        return self.head(self.text_features(texts))


def train_sentencepiece(texts, model_prefix, vocab_size=1000, model_type="unigram", character_coverage=1.0):
    """Train a sentencepiece model on `texts` (an iterable of str); return the .model path.

    `hard_vocab_limit=False` lets a tiny corpus give fewer pieces than `vocab_size`. Both output
    files (<prefix>.model, <prefix>.vocab) appear atomically.
    """
    import sentencepiece as spm
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise SerError(f"sentencepiece: no text to train {model_prefix!r} on")
    model_prefix = os.fspath(model_prefix)
    os.makedirs(os.path.dirname(model_prefix) or ".", exist_ok=True)
    tmp = f"{model_prefix}.tmp{os.getpid()}"
    try:
        spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_prefix=tmp, vocab_size=vocab_size,
                                       model_type=model_type, character_coverage=character_coverage,
                                       hard_vocab_limit=False, minloglevel=2)
        for ext in (".vocab", ".model"):
            os.replace(tmp + ext, model_prefix + ext)
    except RuntimeError as e:
        raise SerError(f"sentencepiece: training {model_prefix!r} failed: {str(e).splitlines()[0]}")
    finally:
        for ext in (".vocab", ".model"):
            if os.path.exists(tmp + ext):
                os.unlink(tmp + ext)
    return model_prefix + ".model"


class SentencePieceConditioner(nn.Module):
    """sentencepiece ids → embedding + positions → transformer encoder → masked mean → head.

    Args:
        spm_model_path: a model written by `train_sentencepiece`.
        vocab_size: embedding rows (None: the model's piece count; must not be smaller).
        dim: encoder width; layers/heads: transformer encoder size; proj_dim: output size.
    forward(texts: list of str) → (B, proj_dim).
    """

    def __init__(self, spm_model_path, vocab_size=None, dim=128, proj_dim=128, layers=2, heads=4,
                 max_length=128, num_tokens=4):
        super().__init__()
        import sentencepiece as spm
        if not os.path.isfile(spm_model_path):
            raise SerError(f"conditioner: no sentencepiece model {spm_model_path!r}")
        self.sp = spm.SentencePieceProcessor(model_file=os.fspath(spm_model_path))
        pieces = self.sp.get_piece_size()
        vocab_size = pieces if vocab_size is None else int(vocab_size)
        if vocab_size < pieces:
            raise SerError(f"conditioner: vocab_size {vocab_size} is smaller than the {pieces} pieces of "
                           f"{spm_model_path}")
        if dim % heads:
            raise SerError(f"conditioner: dim ({dim}) must be divisible by heads ({heads})")
        self.spm_model_path, self.max_length, self.pad_id = os.fspath(spm_model_path), max_length, vocab_size
        self.embed = nn.Embedding(vocab_size + 1, dim, padding_idx=vocab_size)
        self.pos = nn.Parameter(torch.randn(max_length, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = ProjectionHead(dim, proj_dim, num_tokens, heads)
        self.proj_dim = proj_dim

    def encode_ids(self, texts):
        """(ids (B, L) padded with pad_id, mask (B, L) True on real tokens), L ≤ max_length."""
        if isinstance(texts, str):
            texts = [texts]
        ids = [self.sp.encode(t)[: self.max_length] or [self.sp.unk_id()] for t in texts]
        length = max(len(i) for i in ids)
        device = self.embed.weight.device
        out = torch.full((len(ids), length), self.pad_id, dtype=torch.long, device=device)
        for row, seq in enumerate(ids):
            out[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        return out, out != self.pad_id

    def forward(self, texts):
        ids, mask = self.encode_ids(texts)
        h = self.embed(ids) + self.pos[: ids.shape[1]]
        with torch.autocast(device_type=ids.device.type, enabled=False):   # LayerNorm/softmax in fp32
            h = self.encoder(h.float(), src_key_padding_mask=~mask)
        m = mask.unsqueeze(-1).float()
        return self.head((h * m).sum(1) / m.sum(1))


_DEFAULTS = {
    "bert": {"type": "bert", "pretrained": None, "proj_dim": 128, "freeze": True, "max_length": 128,
             "num_tokens": 4, "heads": 4},
    "sentencepiece": {"type": "sentencepiece", "spm_model": None, "vocab_size": None, "dim": 128,
                      "proj_dim": 128, "layers": 2, "heads": 4, "max_length": 128, "num_tokens": 4},
}


def build_conditioner(conf):
    """A conditioner from a config dict with `type: bert | sentencepiece`.

    bert: pretrained (required), proj_dim, freeze, max_length, num_tokens, heads.
    sentencepiece: spm_model (required), vocab_size, dim, proj_dim, layers, heads, max_length,
    num_tokens. Unknown type or keys → SerError.
    """
    conf = dict(conf or {})
    kind = conf.get("type")
    if kind not in _DEFAULTS:
        raise SerError(f"conditioner: unknown type {kind!r} (known: {', '.join(_DEFAULTS)})")
    unknown = sorted(set(conf) - set(_DEFAULTS[kind]))
    if unknown:
        raise SerError(f"conditioner '{kind}': unknown option(s) {', '.join(map(repr, unknown))} "
                       f"(known: {', '.join(sorted(_DEFAULTS[kind]))})")
    c = {**_DEFAULTS[kind], **conf}
    if kind == "bert":
        if not c["pretrained"]:
            raise SerError("conditioner 'bert': option 'pretrained' (directory or hub id) is required")
        return BertConditioner(c["pretrained"], proj_dim=c["proj_dim"], freeze=c["freeze"],
                               max_length=c["max_length"], num_tokens=c["num_tokens"], heads=c["heads"])
    if not c["spm_model"]:
        raise SerError("conditioner 'sentencepiece': option 'spm_model' (path of a .model) is required")
    return SentencePieceConditioner(c["spm_model"], vocab_size=c["vocab_size"], dim=c["dim"],
                                    proj_dim=c["proj_dim"], layers=c["layers"], heads=c["heads"],
                                    max_length=c["max_length"], num_tokens=c["num_tokens"])
