# The ICDR diabetic-retinopathy grade vocabulary (Wilkinson et al., Ophthalmology 2003), the one owner of
# grade numbers and their names. Class k of a labelled DR dataset is grade k; its short name is DR<k>.

#----------------------------------------------------------------------------

GRADES = (0, 1, 2, 3, 4)
PREFIX = 'DR'

# Clinical wording shown to readers and in reports.
DESCRIPTIONS = {
    0: 'no apparent retinopathy',
    1: 'mild non-proliferative DR (microaneurysms only)',
    2: 'moderate non-proliferative DR',
    3: 'severe non-proliferative DR',
    4: 'proliferative DR',
}

REFERABLE_MIN = 2   # Grade >= 2 is referable DR, the usual screening end point.

class GradeError(ValueError):
    """A grade name or number that is not an ICDR grade (or not one of a network's classes)."""

#----------------------------------------------------------------------------

def grade_name(grade):
    """0 -> 'DR0'."""
    return f'{PREFIX}{int(grade)}'

def parse_grade(text, num_classes=len(GRADES), option='--class'):
    """'DR1', 'dr1' or '1' -> 1; anything else, or a class the network lacks, raises GradeError."""
    token = str(text).strip()
    if token.upper().startswith(PREFIX):
        token = token[len(PREFIX):]
    if not token.isdigit():
        raise GradeError(f'{option}={text}: expected a class index (0..{num_classes - 1}) or a grade name '
                         f'({grade_name(0)}..{grade_name(num_classes - 1)})')
    grade = int(token)
    if grade >= num_classes:
        raise GradeError(f'{option}={text}: this network has {num_classes} classes (0..{num_classes - 1})')
    return grade

def class_index(text, c_dim, option='--class'):
    """The class a network with `c_dim` labels is asked for: None for unconditional networks, else a grade."""
    if text is None:
        if c_dim > 0:
            names = ', '.join(grade_name(i) for i in range(c_dim))
            raise GradeError(f'{option} is required: this network is conditional with {c_dim} classes ({names})')
        return None
    if c_dim == 0:
        raise GradeError(f'{option}={text}: this network is unconditional (trained without labels); leave {option} out')
    return parse_grade(text, num_classes=c_dim, option=option)

def is_referable(grade):
    return int(grade) >= REFERABLE_MIN

#----------------------------------------------------------------------------
