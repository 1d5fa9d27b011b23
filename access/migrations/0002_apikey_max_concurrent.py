from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("access", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="max_concurrent",
            field=models.PositiveIntegerField(
                default=4, help_text="requests of this key answered at once (generations, streams); 0: no limit"
            ),
        ),
    ]
