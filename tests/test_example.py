"""The bundled Keras 1 example project, rewritten end to end, equals the committed expected tree, and
the rewritten models build under Keras 3 with the output shapes the Keras 1 models had."""

import shutil
from pathlib import Path

import pytest

from .conftest import FIXTURES

SOURCE = FIXTURES / "example" / "keras1"
EXPECTED = FIXTURES / "example" / "expected"

# Output shapes worked out by hand from Keras 1 semantics (and the example's own comments).
OUTPUT_SHAPES = {
    "vgg_like": (None, 10),
    "unet_like": (None, 32, 32, 1),
    "text_cnn": (None, 1),
    "c3d_like": (None, 5),
    "backend_branch": (None, 8),  # keras.json default: channels_last, like Keras 1.1+'s 'tf'
}


@pytest.fixture(scope="module")
def rewritten(tmp_path_factory):
    from click.testing import CliRunner

    from kmigrate.cli import cli

    tree = tmp_path_factory.mktemp("example") / "keras1"
    shutil.copytree(SOURCE, tree)
    result = CliRunner().invoke(cli, ["rewrite", str(tree)])
    return tree, result


def test_rewrite_equals_expected_tree(rewritten):
    tree, result = rewritten
    assert result.exit_code == 1, result.stderr
    names = sorted(p.name for p in tree.iterdir())
    assert names == sorted(p.name for p in EXPECTED.iterdir())
    for name in names:
        assert (tree / name).read_text() == (EXPECTED / name).read_text(), name
    warnings = [line for line in result.stderr.splitlines() if ": warning [" in line]
    deconv = [w for w in warnings if "unet_like.py:13:11: warning [deconv2d]" in w]
    bias = [w for w in warnings if "bias along the wrong axis" in w]  # Keras 3.15's channels_first bias
    assert len(deconv) == 2 and len(bias) == 6 and len(warnings) == 8, warnings
    assert {w.split(":")[0].rsplit("/", 1)[1] for w in bias} == {"c3d_like.py", "vgg_like.py"}
    assert ": error [" not in result.stderr


def test_expected_tree_is_a_fixed_point(tmp_path):
    from click.testing import CliRunner

    from kmigrate.cli import cli

    tree = tmp_path / "expected"
    shutil.copytree(EXPECTED, tree)
    result = CliRunner().invoke(cli, ["rewrite", "--check", str(tree)])
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("name", sorted(OUTPUT_SHAPES))
def test_rewritten_models_build_under_keras3(name):
    import keras

    keras.config.set_image_data_format("channels_last")
    namespace = {"__name__": f"example_{name}"}
    source = (EXPECTED / f"{name}.py").read_text()
    exec(compile(source, str(EXPECTED / f"{name}.py"), "exec"), namespace)  # trusted test data
    model = namespace["build_model"]()
    assert tuple(model.output_shape) == OUTPUT_SHAPES[name]


def test_th_project_rewritten_with_its_ordering_builds_what_keras1_built_under_th(tmp_path):
    """A project whose keras.json said 'th': layers get channels_first, and the image_dim_ordering()
    branches take the th path too (Keras 3's own global stays channels_last, as it must for Flatten)."""
    import keras

    from kmigrate.rewrite.files import rewrite_source
    from kmigrate.spec.model import Options

    source = (SOURCE / "backend_branch.py").read_text()
    new, diags = rewrite_source(source, "backend_branch.py", Options(default_dim_ordering="th"))
    assert not [d for d in diags if d.severity.value == "error"]
    keras.config.set_image_data_format("channels_last")
    namespace = {"__name__": "example_backend_branch_th"}
    exec(compile(new, "backend_branch.py", "exec"), namespace)  # trusted test data, rewritten
    model = namespace["build_model"]()
    # Keras 1.2.2 under th: input (3, 24, 24), padded to 26x26; conv1 3x3 stride 2: (8, 12, 12); BN on axis 1
    assert tuple(model.input_shape) == (None, 3, 24, 24)
    assert tuple(model.get_layer("conv1").output.shape) == (None, 8, 12, 12)
    assert model.get_layer("bn_conv1").axis in (1, [1])
    assert tuple(model.output_shape) == (None, 8)
    assert keras.config.image_data_format() == "channels_last"
