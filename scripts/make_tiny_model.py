#!/usr/bin/env python3
"""Build a tiny random-weight Qwen2 causal LM and a locally trained byte-level BPE tokenizer,
offline (no hub access), into OUT_DIR, loadable by `vllm serve` and transformers.

Usage: python scripts/make_tiny_model.py OUT_DIR [--force]

Cached: when OUT_DIR already holds a model built by this recipe (stamp file
`.msp-tiny-model` with the recipe hash), nothing is rebuilt.  The build happens in a temporary
sibling directory renamed into place, so an interrupted build never leaves a half model.
Recipe (../shared/reference/VLLM_CPU.md §4): vocabulary 2048 trained on the first 200 sorted
*.py files of the stdlib; ChatML template; Qwen2 hidden 128, 2 layers, 4 heads of 32 (the CPU
attention backend needs head_dim >= 32), 2 KV heads; seed 0; fp32 safetensors.
"""
import glob
import hashlib
import json
import os
import shutil
import sys
import sysconfig
import tempfile
import time

RECIPE = {
    "version": 1,
    "vocab": 2048,
    "specials": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    "train_files": 200,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "max_position_embeddings": 2048,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6,
    "seed": 0,
}
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
STAMP = ".msp-tiny-model"
REQUIRED = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json")


def recipe_hash():
    blob = json.dumps(RECIPE, sort_keys=True) + CHAT_TEMPLATE
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def is_cached(out):
    try:
        with open(os.path.join(out, STAMP)) as f:
            if f.read().strip() != recipe_hash():
                return False
    except OSError:
        return False
    return all(os.path.isfile(os.path.join(out, n)) for n in REQUIRED)


def build(out):
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    t0 = time.time()
    stdlib = sysconfig.get_paths()["stdlib"]
    files = sorted(glob.glob(os.path.join(stdlib, "*.py")))[:RECIPE["train_files"]]
    if not files:
        sys.exit("make_tiny_model: no training text found under %s" % stdlib)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=RECIPE["vocab"], min_frequency=2,
                                  special_tokens=RECIPE["specials"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train(files, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=None, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", unk_token=None,
                                   model_max_length=2048)
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    vocab_size = len(fast)
    eos_id = fast.convert_tokens_to_ids("<|im_end|>")
    pad_id = fast.convert_tokens_to_ids("<|endoftext|>")
    print("make_tiny_model: tokenizer vocab=%d from %d files, eos=%d pad=%d (%.1fs)"
          % (vocab_size, len(files), eos_id, pad_id, time.time() - t0), file=sys.stderr)

    torch.manual_seed(RECIPE["seed"])
    cfg = Qwen2Config(vocab_size=vocab_size, hidden_size=RECIPE["hidden_size"],
                      intermediate_size=RECIPE["intermediate_size"],
                      num_hidden_layers=RECIPE["num_hidden_layers"],
                      num_attention_heads=RECIPE["num_attention_heads"],
                      num_key_value_heads=RECIPE["num_key_value_heads"],
                      head_dim=RECIPE["head_dim"],
                      max_position_embeddings=RECIPE["max_position_embeddings"],
                      rope_theta=RECIPE["rope_theta"], rms_norm_eps=RECIPE["rms_norm_eps"],
                      tie_word_embeddings=True, bos_token_id=pad_id, eos_token_id=eos_id,
                      pad_token_id=pad_id)
    cfg.architectures = ["Qwen2ForCausalLM"]
    model = Qwen2ForCausalLM(cfg).to(torch.float32)
    model.save_pretrained(out, safe_serialization=True)
    GenerationConfig(bos_token_id=pad_id, eos_token_id=eos_id,
                     pad_token_id=pad_id).save_pretrained(out)
    n = sum(p.numel() for p in model.parameters())
    print("make_tiny_model: %d parameters (%.1fs)" % (n, time.time() - t0), file=sys.stderr)


def main(argv):
    args = [a for a in argv if a != "--force"]
    if len(args) != 1:
        sys.exit("usage: make_tiny_model.py OUT_DIR [--force]")
    out = os.path.abspath(args[0])
    if "--force" not in argv and is_cached(out):
        print("make_tiny_model: cached model in %s" % out, file=sys.stderr)
        print(out)
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parent = os.path.dirname(out) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tiny-model-", dir=parent)
    try:
        build(tmp)
        with open(os.path.join(tmp, STAMP), "w") as f:
            f.write(recipe_hash() + "\n")
        os.chmod(tmp, 0o755)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
