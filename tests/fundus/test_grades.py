# fundus.grades: the grade vocabulary and the --class parser built on it.

import pytest

from fundus import grades

#----------------------------------------------------------------------------

def test_names_round_trip():
    for g in grades.GRADES:
        assert grades.parse_grade(grades.grade_name(g)) == g
        assert grades.parse_grade(str(g)) == g
    assert grades.parse_grade(' dr3 ') == 3
    assert [grades.is_referable(g) for g in grades.GRADES] == [False, False, True, True, True]

@pytest.mark.parametrize('text', ['DR5', '7', 'moderate', '-1', 'DR'])
def test_bad_grades_name_the_option(text):
    with pytest.raises(grades.GradeError, match='--class='):
        grades.parse_grade(text)

def test_class_index_for_networks():
    assert grades.class_index(None, 0) is None
    assert grades.class_index('DR2', 5) == 2
    with pytest.raises(grades.GradeError, match='required: this network is conditional with 3 classes \\(DR0, DR1, DR2\\)'):
        grades.class_index(None, 3)
    with pytest.raises(grades.GradeError, match='unconditional'):
        grades.class_index('1', 0)
    with pytest.raises(grades.GradeError, match='has 2 classes'):
        grades.class_index('DR2', 2)

#----------------------------------------------------------------------------
