# training/networks_common.py: both architectures' Generator classes share one wrapper and one set of
# validators, while keeping their own class names and state-dict layout (synthesis.*, mapping.*).

import pytest

from tests.support import tiny_configs
from training import networks_common, networks_stylegan2, networks_stylegan3

#----------------------------------------------------------------------------

@pytest.mark.parametrize('make_kwargs', [tiny_configs.sg2_generator_kwargs, tiny_configs.sg3_generator_kwargs])
def test_generators_share_the_wrapper_and_keep_their_names_and_layout(make_kwargs):
    G = tiny_configs.build(make_kwargs())
    assert isinstance(G, networks_common.GeneratorBase) and type(G).__name__ == 'Generator'
    assert {k.split('.')[0] for k in G.state_dict()} == {'synthesis', 'mapping'}
    assert G.num_ws == G.synthesis.num_ws == G.mapping.num_ws
    assert type(G).__module__ in (networks_stylegan2.__name__, networks_stylegan3.__name__)

def test_validators_raise_one_line_value_errors():
    networks_common.require(True, 'unused')
    with pytest.raises(ValueError, match='^bad width$'):
        networks_common.require(False, 'bad width')
    assert networks_common.is_power_of_two(16) and not networks_common.is_power_of_two(12)
    assert not networks_common.is_int(2.0, 1) and networks_common.is_int(2, 1)
