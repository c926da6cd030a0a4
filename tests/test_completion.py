"""Shell completion: typer's --install-completion/--show-completion, and the completions the
installed `blase` script answers (what bash asks through _BLASE_COMPLETE)."""

from __future__ import annotations


def _complete(blase_exe, tmp_path, words: str, cword: int) -> list[str]:
    env = {"_BLASE_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    result = blase_exe(cwd=tmp_path, env=env)
    assert result.exit_code == 0, result.stderr
    return result.stdout.split()


def test_commands_and_options_complete(blase_exe, tmp_path):
    assert {"serve", "session"} <= set(_complete(blase_exe, tmp_path, "blase se", 1))
    assert {"--port", "--project"} <= set(_complete(blase_exe, tmp_path, "blase serve --p", 2))
    assert "check" in _complete(blase_exe, tmp_path, "blase plugin ", 2)


def test_show_completion_prints_a_script_for_the_shell(blase_exe, tmp_path):
    result = blase_exe("--show-completion", "bash", cwd=tmp_path)
    assert result.exit_code == 0 and "complete -o default -F _blase_completion blase" in result.stdout
