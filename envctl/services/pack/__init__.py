"""``envctl pack``: a relocatable archive of an environment for clusters envctl does not manage."""
