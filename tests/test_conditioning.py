"""Text conditioners: a tiny random BERT saved to and loaded from a local directory (the real
loading path, no download), sentencepiece training/encoding, and the factory."""
import os

import pytest
import torch

from ser.diffusion.conditioning import (BertConditioner, SentencePieceConditioner, build_conditioner,
                                        condition_text, train_sentencepiece)
from ser.errors import SerError

SENTENCES = [
    "Der Lappen liegt auf dem Eisschrank.",
    "Das will sie am Mittwoch abgeben.",
    "Heute abend könnte ich es ihm sagen.",
    "In sieben Stunden wird es soweit sein.",
    "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
]
EMOTIONS = ["anger", "happiness", "sadness", "neutral"]
SPEAKERS = ["03", "08", "11"]


pytestmark = pytest.mark.usefixtures("one_thread")


def texts():
    return [condition_text(s, e, spk) for s in SENTENCES for e in EMOTIONS for spk in SPEAKERS]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """Random 2-layer BERT + a word-level vocab from the sentences, saved with save_pretrained."""
    from transformers import BertConfig, BertModel, BertTokenizerFast
    d = tmp_path_factory.mktemp("tiny_bert")
    words = set()
    for t in texts():
        for w in t.lower().replace("?", " ? ").replace(".", " . ").replace(",", " , ").replace(":", " : ").split():
            words.add(w)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(words)
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(vocab=str(d / "vocab.txt"))
    tok.save_pretrained(str(d))
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, initializer_range=0.2)).save_pretrained(str(d))
    # (initializer_range 0.2 instead of BERT's 0.02: a random BERT that small barely lets the CLS
    # state depend on the other tokens, so different texts would give near-identical vectors)
    return d


def test_condition_text():
    assert condition_text("  Der  Lappen liegt. ", "anger", "03") == "Der Lappen liegt. | emotion: anger | speaker: 03"


def test_bert_conditioner_from_local_dir(tiny_bert):
    torch.manual_seed(1)
    cond = BertConditioner(str(tiny_bert), proj_dim=16)
    batch = [condition_text(SENTENCES[0], "anger", "03"), condition_text(SENTENCES[0], "sadness", "03"),
             condition_text(SENTENCES[3], "anger", "11")]
    ids = cond.tokenizer(batch[0])["input_ids"]
    assert cond.tokenizer.unk_token_id not in ids          # our vocab really was loaded
    out = cond(batch)
    assert out.shape == (3, 16) and torch.isfinite(out).all()
    rel = lambda a, b: ((a - b).norm() / a.norm()).item()
    assert rel(out[0], out[1]) > 1e-2 and rel(out[0], out[2]) > 1e-2      # emotion / sentence change it
    torch.testing.assert_close(cond(batch[:1]), out[:1], atol=1e-5, rtol=1e-5)   # padding does not matter
    # frozen BERT: not among the trainable parameters nor in the checkpoint; head gets gradients
    names = [n for n, _ in cond.named_parameters()]
    assert names and all(n.startswith("head.") for n in names)
    assert all(k.startswith("head.") for k in cond.state_dict())
    out.sum().backward()
    assert all(p.grad is not None for p in cond.parameters())
    assert all(p.grad is None for p in cond.bert.parameters())
    cond.train()
    assert not cond.bert.training
    cond.double()
    assert next(cond.bert.parameters()).dtype == torch.float64     # .to()/.double() reach the frozen BERT


def test_bert_conditioner_unfrozen_and_errors(tiny_bert, tmp_path):
    cond = build_conditioner({"type": "bert", "pretrained": str(tiny_bert), "proj_dim": 8, "freeze": False})
    assert any(n.startswith("bert.") for n, _ in cond.named_parameters())
    cond(["Das will sie am Mittwoch abgeben. | emotion: anger | speaker: 03"]).sum().backward()
    assert cond.bert.embeddings.word_embeddings.weight.grad is not None
    with pytest.raises(SerError, match="cannot load BERT"):
        BertConditioner(str(tmp_path / "missing_dir"), proj_dim=8)


def test_sentencepiece_train_encode_decode(tmp_path):
    corpus = SENTENCES + texts()
    path = train_sentencepiece(corpus, tmp_path / "spm" / "text", vocab_size=80)
    assert path == str(tmp_path / "spm" / "text.model")
    assert os.path.isfile(path) and os.path.isfile(tmp_path / "spm" / "text.vocab")
    assert not [f for f in os.listdir(tmp_path / "spm") if ".tmp" in f]
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=path)
    assert 10 < sp.get_piece_size() <= 80
    for s in corpus[:8] + ["Was sind denn das für Tüten?"]:
        ids = sp.encode(s)
        assert ids and sp.decode(ids) == s

    torch.manual_seed(0)
    cond = SentencePieceConditioner(path, dim=32, proj_dim=16, layers=1, heads=2)
    batch = [texts()[0], texts()[1], "Heute abend | emotion: neutral | speaker: 08"]
    out = cond(batch)
    assert out.shape == (3, 16) and torch.isfinite(out).all()
    assert ((out[0] - out[1]).norm() / out[0].norm()).item() > 1e-2
    torch.testing.assert_close(cond(batch[2:]), out[2:], atol=1e-5, rtol=1e-5)   # padding is masked
    out.sum().backward()
    assert cond.embed.weight.grad is not None and cond.head.out.weight.grad is not None
    with pytest.raises(SerError, match="smaller than"):
        SentencePieceConditioner(path, vocab_size=5)


def test_build_conditioner(tmp_path):
    path = train_sentencepiece(texts(), tmp_path / "m", vocab_size=60)
    cond = build_conditioner({"type": "sentencepiece", "spm_model": path, "dim": 32, "proj_dim": 8, "heads": 2,
                              "layers": 1})
    assert isinstance(cond, SentencePieceConditioner) and cond(["x"]).shape == (1, 8)
    with pytest.raises(SerError, match="unknown type 'word2vec'"):
        build_conditioner({"type": "word2vec"})
    with pytest.raises(SerError, match="unknown type"):
        build_conditioner({})
    with pytest.raises(SerError, match="unknown option"):
        build_conditioner({"type": "sentencepiece", "spm_model": path, "size": 3})
    with pytest.raises(SerError, match="pretrained"):
        build_conditioner({"type": "bert"})
    with pytest.raises(SerError, match="no sentencepiece model"):
        build_conditioner({"type": "sentencepiece", "spm_model": str(tmp_path / "nope.model")})
    with pytest.raises(SerError, match="no text"):
        train_sentencepiece(["", "  "], tmp_path / "empty")
