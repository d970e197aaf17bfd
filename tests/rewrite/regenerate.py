"""Write each fixture's expected output and diagnostics from the current rules, for review in `git diff`.

    python -m tests.rewrite.regenerate

A new case needs only its `<case>.before.py` (or `<case>.noop.py`); read the diff this produces before
committing it: the test suite then holds the rules to it.
"""

from kmigrate.rewrite.files import rewrite_keras_json, rewrite_source

from .fixture_cases import cases


def main() -> None:
    for case in cases():
        fn = rewrite_keras_json if case.before.suffix == ".json" else rewrite_source
        out, diags = fn(case.before.read_text(), case.label, case.options)
        if case.noop and out != case.before.read_text():
            print(f"{case.id}: a no-op case changes; make it a .before file")
        elif not case.noop:
            case.after.write_text(out)
        path = case.before.parent / f"{case.name}.diagnostics"
        if diags:
            path.write_text("".join(d.render() + "\n" for d in diags))
        elif path.exists():
            path.unlink()


if __name__ == "__main__":
    main()
